//! The CLI's settings file, written by `shiplane init --stack NAME` from the deployed
//! stack's outputs, so an operator types no ARNs.
//!
//! Precedence, highest first: a flag, its `SHIPLANE_*` (or `AWS_REGION`) environment
//! variable, the project file (`.shiplane/config.toml` in the current directory or the
//! nearest parent that has one), the user file (`$XDG_CONFIG_HOME/shiplane/config.toml`,
//! else `~/.config/shiplane/config.toml`), the built-in default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The project file's path below a project's root.
pub const PROJECT_FILE: &str = ".shiplane/config.toml";

/// What the CLI needs to reach a deployed Shiplane; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The stack the values came from (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// The region the stack lives in; used when `AWS_REGION` is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// The topic AWS Chatbot subscribes to (the stack's ChatbotTopicArn output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chatbot_topic_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_function_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_function: Option<String>,
}

impl Settings {
    /// Each setting with the id of the command-line argument it is the default of.
    pub fn arg_defaults(&self) -> Vec<(&'static str, String)> {
        [
            ("table", &self.table),
            ("topic", &self.topic_arn),
            ("chatbot_topic", &self.chatbot_topic_arn),
            ("schedule_group", &self.schedule_group),
            ("promote_function_arn", &self.promote_function_arn),
            ("scheduler_role_arn", &self.scheduler_role_arn),
            ("hook_function", &self.hook_function),
        ]
        .into_iter()
        .filter_map(|(id, v)| v.clone().map(|v| (id, v)))
        .collect()
    }

    /// `self`, with `lower`'s values where `self` has none.
    fn over(self, lower: Settings) -> Settings {
        Settings {
            stack: self.stack.or(lower.stack),
            region: self.region.or(lower.region),
            table: self.table.or(lower.table),
            topic_arn: self.topic_arn.or(lower.topic_arn),
            chatbot_topic_arn: self.chatbot_topic_arn.or(lower.chatbot_topic_arn),
            schedule_group: self.schedule_group.or(lower.schedule_group),
            promote_function_arn: self.promote_function_arn.or(lower.promote_function_arn),
            scheduler_role_arn: self.scheduler_role_arn.or(lower.scheduler_role_arn),
            hook_function: self.hook_function.or(lower.hook_function),
        }
    }

    /// The TOML written to a settings file, with a header saying where it came from.
    pub fn to_file(&self) -> String {
        // Optional strings only: serialising them cannot fail.
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# Shiplane CLI settings, written by `shiplane init`. Flags and SHIPLANE_* / AWS_REGION\n# environment variables override them.\n{body}"
        )
    }
}

/// The project file that applies in `dir`: the nearest `.shiplane/config.toml` up the tree.
pub fn project_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(PROJECT_FILE))
        .find(|p| p.is_file())
}

/// The user file's path (it may not exist).
pub fn user_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("shiplane/config.toml"))
}

fn read(path: &Path) -> Result<Settings, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        format!(
            "{}: {}; fix it, or write it again with `shiplane init --stack NAME`",
            path.display(),
            e.message()
        )
    })
}

/// The project file over the user file; an unreadable or invalid file is an error that
/// names it.
pub fn load() -> Result<Settings, String> {
    let project = match std::env::current_dir().ok().and_then(|d| project_file(&d)) {
        Some(p) => read(&p)?,
        None => Settings::default(),
    };
    let user = match user_file().filter(|p| p.is_file()) {
        Some(p) => read(&p)?,
        None => Settings::default(),
    };
    Ok(project.over(user))
}

/// Writes `settings` to `path`, creating its directory.
pub fn write(path: &Path, settings: &Settings) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, settings.to_file())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `cmd` (and every subcommand) with the settings as its arguments' defaults, so that a
/// flag and its environment variable still win.
pub fn with_defaults(cmd: clap::Command, defaults: &[(&'static str, String)]) -> clap::Command {
    cmd.mut_args(
        |a| match defaults.iter().find(|(id, _)| a.get_id() == *id) {
            Some((_, v)) => a.default_value(v.clone()),
            None => a,
        },
    )
    .mut_subcommands(|sub| with_defaults(sub, defaults))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_round_trips_and_the_project_wins_over_the_user() {
        let s = Settings {
            stack: Some("shiplane".into()),
            region: Some("eu-west-1".into()),
            table: Some("t".into()),
            ..Settings::default()
        };
        let back: Settings = toml::from_str(&s.to_file()).unwrap();
        assert_eq!(back, s);
        let user = Settings {
            table: Some("user".into()),
            topic_arn: Some("arn:user".into()),
            ..Settings::default()
        };
        let merged = s.over(user);
        assert_eq!(merged.table.as_deref(), Some("t"));
        assert_eq!(merged.topic_arn.as_deref(), Some("arn:user"));
    }

    #[test]
    fn an_unknown_key_names_the_file() {
        let dir = std::env::temp_dir().join(format!("shiplane-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, "tabel = \"x\"\n").unwrap();
        let err = read(&path).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            err.contains("config.toml") && err.contains("tabel"),
            "{err}"
        );
    }
}
