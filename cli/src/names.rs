//! How an operator names a release: `SERVICE@TAG` (what they pushed), a release id, or the
//! start of one (like git's short hashes; `shiplane status` shows the first ten
//! characters). Every command that takes a release resolves it here, so a name means the
//! same release everywhere.

use shiplane::pipeline::Pipeline;
use shiplane::release::{Release, ReleaseId, escaped};
use shiplane::store::ReleaseStore;

use crate::Failure;

/// How many of a service's newest releases a tag or an id prefix is looked for in: a
/// name older than that is given by its full id.
pub const SEARCHED: usize = 1000;

/// The fewest characters of an id taken as a prefix: shorter ones match too much to mean
/// anything (the first ten characters of an id are its time).
pub const MIN_PREFIX: usize = 4;

/// A release found by its name, with what a person should be told about the choice.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub release: Release,
    /// Said when the name was not exact (a tag on more than one release: the newest
    /// was taken).
    pub note: Option<String>,
}

/// The release `text` names: `SERVICE@TAG` (the newest release pushed under that tag; a
/// digest `sha256:…` or its start also works after the `@`), a release id, or a unique
/// prefix of one (at least [`MIN_PREFIX`] characters). Every error names what was
/// looked for and how to find the right name.
pub async fn resolve<S: ReleaseStore>(store: &S, text: &str) -> Result<Resolved, Failure> {
    let text = text.trim();
    if let Some((service, tag)) = text.split_once('@') {
        return by_tag(store, service, tag).await;
    }
    if text.len() == 26
        && let Ok(id) = ReleaseId::parse(text)
    {
        return match store.release(&id).await? {
            Some(r) => Ok(Resolved {
                release: r.item,
                note: None,
            }),
            None => Err(Failure::BadInput(format!(
                "no release {id}; find it with `shiplane status` or `shiplane history SERVICE`"
            ))),
        };
    }
    let prefix = id_prefix(text)?;
    by_prefix(store, &prefix).await
}

/// A name as people read it and the CLI accepts it back: `api@v1.2.0`, or the release id
/// when it has no tag.
pub fn display(release: &Release) -> String {
    match release.tags.first() {
        Some(tag) => format!("{}@{tag}", release.service),
        None => release.id.to_string(),
    }
}

/// Whether `text` can only name a release: `SERVICE@TAG`, or a whole release id. (A
/// shorter run of id characters may be a service's name too; `history` asks both.)
pub fn is_release_name(text: &str) -> bool {
    text.contains('@') || (text.len() == 26 && ReleaseId::parse(text).is_ok())
}

/// Whether `text` can be the start of a release id (at least [`MIN_PREFIX`] of its
/// characters).
pub fn may_be_id_prefix(text: &str) -> bool {
    id_prefix(text).is_ok()
}

/// `text` upper-cased as an id prefix, or why it cannot be one.
fn id_prefix(text: &str) -> Result<String, Failure> {
    const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let upper = text.to_ascii_uppercase();
    let is_id_text =
        !upper.is_empty() && upper.len() <= 26 && upper.chars().all(|c| CROCKFORD.contains(c));
    if !is_id_text {
        return Err(Failure::BadInput(format!(
            "\"{}\" is not a release name: give SERVICE@TAG (e.g. api@v1.2.0), a release id, or its first characters (at least {MIN_PREFIX}, as `shiplane status` shows them)",
            shown(text)
        )));
    }
    if upper.len() < MIN_PREFIX {
        return Err(Failure::BadInput(format!(
            "\"{}\" is too short to name a release: give at least {MIN_PREFIX} characters of its id, or SERVICE@TAG (e.g. api@v1.2.0)",
            shown(text)
        )));
    }
    Ok(upper)
}

/// Untrusted text as an error shows it: escaped and cut.
fn shown(text: &str) -> String {
    escaped(&text.chars().take(64).collect::<String>())
}

async fn by_tag<S: ReleaseStore>(store: &S, service: &str, tag: &str) -> Result<Resolved, Failure> {
    if service.is_empty() || tag.is_empty() {
        return Err(Failure::BadInput(format!(
            "\"{}\" is not a release name: write SERVICE@TAG with both parts, e.g. api@v1.2.0",
            shown(&format!("{service}@{tag}"))
        )));
    }
    let releases = store.releases_of_service(service, SEARCHED).await?;
    if releases.is_empty() {
        return Err(no_releases(store, service).await);
    }
    let by_digest = tag.starts_with("sha256:");
    let mut matching: Vec<&Release> = releases
        .iter()
        .filter(|r| {
            if by_digest {
                r.digest.as_str().starts_with(tag)
            } else {
                r.tags.iter().any(|t| t == tag)
            }
        })
        .collect();
    // Newest push first: what a re-pushed tag names now.
    matching.sort_by(|a, b| (b.pushed_at, &b.id).cmp(&(a.pushed_at, &a.id)));
    let Some(newest) = matching.first() else {
        let known: Vec<&str> = releases
            .iter()
            .filter_map(|r| r.tags.first().map(String::as_str))
            .take(5)
            .collect();
        return Err(Failure::BadInput(format!(
            "no release of {service} {} {}{}; see its releases with `shiplane history {service}`",
            if by_digest {
                "has a digest starting"
            } else {
                "is tagged"
            },
            shown(tag),
            if known.is_empty() {
                String::new()
            } else {
                format!(" (its newest tags: {})", known.join(", "))
            }
        )));
    };
    let note = (matching.len() > 1).then(|| {
        let others: Vec<String> = matching[1..].iter().map(|r| r.id.to_string()).collect();
        format!(
            "note: {service}@{} names {} releases; taking the newest, {} (the other{}: {}); give an id to choose another",
            shown(tag),
            matching.len(),
            newest.id,
            if others.len() == 1 { "" } else { "s" },
            others.join(", ")
        )
    });
    Ok(Resolved {
        release: (*newest).clone(),
        note,
    })
}

/// Why a service has no release to name: it is not in the pipeline, or nothing was
/// pushed yet.
async fn no_releases<S: ReleaseStore>(store: &S, service: &str) -> Failure {
    let services = match pipeline(store).await {
        Ok(p) => p.services.keys().cloned().collect::<Vec<_>>(),
        Err(f) => return f,
    };
    if services.iter().any(|s| s == service) {
        Failure::BadInput(format!(
            "{service} has no releases yet; push an image to its repository, or `shiplane deploy {service} --tag TAG`"
        ))
    } else {
        Failure::BadInput(format!(
            "no service \"{}\" in the pipeline (services: {}); name a release as SERVICE@TAG",
            shown(service),
            services.join(", ")
        ))
    }
}

async fn pipeline<S: ReleaseStore>(store: &S) -> Result<Pipeline, Failure> {
    let stored = store.pipeline().await?.ok_or_else(|| {
        Failure::Failed(
            "no pipeline is stored yet, so no release has a name; store one with `shiplane config apply FILE`".into(),
        )
    })?;
    Pipeline::from_toml(&stored.source).map_err(|e| {
        Failure::Failed(format!(
            "the stored pipeline (version {}) no longer validates: {e}",
            stored.version
        ))
    })
}

async fn by_prefix<S: ReleaseStore>(store: &S, prefix: &str) -> Result<Resolved, Failure> {
    let pipeline = pipeline(store).await?;
    let mut found = Vec::new();
    for service in pipeline.services.keys() {
        found.extend(
            store
                .releases_of_service(service, SEARCHED)
                .await?
                .into_iter()
                .filter(|r| r.id.as_str().starts_with(prefix)),
        );
    }
    match found.len() {
        0 => Err(Failure::BadInput(format!(
            "no release id starts with {prefix} (looked in each service's newest {SEARCHED} releases); find it with `shiplane status` or `shiplane history SERVICE`, or give SERVICE@TAG"
        ))),
        1 => Ok(Resolved {
            release: found.remove(0),
            note: None,
        }),
        n => {
            found.sort_by(|a, b| a.id.cmp(&b.id));
            let candidates: Vec<String> = found
                .iter()
                .map(|r| format!("{} ({})", r.id, display(r)))
                .collect();
            Err(Failure::BadInput(format!(
                "{prefix} is the start of {n} release ids: {}; type more of the id, or give SERVICE@TAG",
                candidates.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use shiplane::release::{Digest, Timestamp};
    use shiplane::store::{Commit, MemoryStore, StoredPipeline, Versioned};

    use super::*;

    fn release(service: &str, n: u64, random: u128, tag: Option<&str>) -> Release {
        let at = 1_750_000_000_000 + n;
        let id = ReleaseId::parse(&ulid::Ulid::from_parts(at, random).to_string()).unwrap();
        Release::new(
            id,
            service,
            &format!("shiplane/{service}"),
            Digest::parse(&format!("sha256:{:064x}", n * 1000 + random as u64)).unwrap(),
            tag,
            Timestamp(at),
        )
    }

    async fn store_with(releases: &[Release]) -> MemoryStore {
        let store = MemoryStore::new();
        store
            .put_pipeline(StoredPipeline {
                version: 1,
                source: include_str!("../../infra/pipeline.example.toml").to_string(),
                applied_at: Timestamp(1),
                applied_by: "test".into(),
            })
            .await
            .unwrap();
        store
            .commit(Commit {
                releases: releases
                    .iter()
                    .map(|r| Versioned {
                        item: r.clone(),
                        version: 0,
                    })
                    .collect(),
                ..Commit::default()
            })
            .await
            .unwrap();
        store
    }

    fn message(f: Failure) -> String {
        match f {
            Failure::BadInput(m) | Failure::Failed(m) => m,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_tag_names_its_release_and_a_repushed_tag_the_newest_said_so() {
        let v1 = release("api", 1, 1, Some("v1"));
        let v2 = release("api", 2, 2, Some("v2"));
        let mut v1_again = release("api", 3, 3, Some("latest"));
        v1_again.add_tag("v1");
        let store = store_with(&[v1.clone(), v2.clone(), v1_again.clone()]).await;

        let found = resolve(&store, "api@v2").await.unwrap();
        assert_eq!(&found.release.id, &v2.id);
        assert_eq!(found.note, None);

        let found = resolve(&store, "api@v1").await.unwrap();
        assert_eq!(&found.release.id, &v1_again.id, "the newest push under v1");
        let note = found.note.unwrap();
        assert!(
            note.contains("names 2 releases") && note.contains(v1.id.as_str()),
            "{note}"
        );

        let by_digest = resolve(&store, &format!("api@{}", &v2.digest.as_str()[..70]))
            .await
            .unwrap();
        assert_eq!(&by_digest.release.id, &v2.id);
    }

    #[tokio::test]
    async fn an_unknown_tag_or_service_is_named_with_the_fix() {
        let store = store_with(&[release("api", 1, 1, Some("v1"))]).await;
        let m = message(resolve(&store, "api@v9").await.unwrap_err());
        assert!(
            m.contains("no release of api is tagged v9")
                && m.contains("its newest tags: v1")
                && m.contains("shiplane history api"),
            "{m}"
        );
        let m = message(resolve(&store, "apx@v1").await.unwrap_err());
        assert!(
            m.contains("no service \"apx\"") && m.contains("services: api, etl, tiles"),
            "{m}"
        );
        let m = message(resolve(&store, "tiles@v1").await.unwrap_err());
        assert!(m.contains("tiles has no releases yet"), "{m}");
        let m = message(resolve(&store, "@v1").await.unwrap_err());
        assert!(m.contains("SERVICE@TAG with both parts"), "{m}");
    }

    #[tokio::test]
    async fn an_id_or_a_unique_prefix_names_a_release_in_any_service() {
        let api = release("api", 1, 1, Some("v1"));
        let etl = release("etl", 900_000_000, 2, None);
        let store = store_with(&[api.clone(), etl.clone()]).await;
        assert_eq!(
            resolve(&store, api.id.as_str()).await.unwrap().release.id,
            api.id
        );
        let short = &etl.id.as_str()[..10];
        assert_eq!(resolve(&store, short).await.unwrap().release.id, etl.id);
        assert_eq!(
            resolve(&store, &short.to_lowercase())
                .await
                .unwrap()
                .release
                .id,
            etl.id,
            "ids are case-insensitive"
        );
    }

    #[tokio::test]
    async fn an_ambiguous_prefix_lists_the_candidates() {
        let a = release("api", 1, 1, Some("v1"));
        let b = release("api", 1, 2, None);
        let store = store_with(&[a.clone(), b.clone()]).await;
        let prefix = &a.id.as_str()[..12];
        let m = message(resolve(&store, prefix).await.unwrap_err());
        assert!(
            m.contains("is the start of 2 release ids")
                && m.contains(&format!("{} (api@v1)", a.id))
                && m.contains(&format!("{} ({})", b.id, b.id))
                && m.contains("type more of the id"),
            "{m}"
        );
    }

    #[tokio::test]
    async fn an_unknown_id_a_short_prefix_or_other_text_says_what_to_give() {
        let store = store_with(&[release("api", 1, 1, Some("v1"))]).await;
        let m = message(resolve(&store, "7ZZZZZZZZZ").await.unwrap_err());
        assert!(
            m.contains("no release id starts with 7ZZZZZZZZZ") && m.contains("shiplane status"),
            "{m}"
        );
        let missing = ReleaseId::new(Timestamp(5));
        let m = message(resolve(&store, missing.as_str()).await.unwrap_err());
        assert!(m.contains(&format!("no release {missing}")), "{m}");
        let m = message(resolve(&store, "01J").await.unwrap_err());
        assert!(m.contains("too short") && m.contains("at least 4"), "{m}");
        let m = message(resolve(&store, "not a name!").await.unwrap_err());
        assert!(
            m.contains("is not a release name") && m.contains("SERVICE@TAG"),
            "{m}"
        );
    }
}
