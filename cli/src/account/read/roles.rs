//! The deployment groups' service roles: CodeDeploy invokes the deploy-hook's aliases as
//! the group's role, so each role must be allowed to. Read with IAM's Get/List calls, each
//! role once, each managed policy once; an alias's own policy is read only where the
//! role's policies do not settle it.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};

use super::{AccountCheck, Lookup};
use crate::account::policy::{Access, Policy, RolePolicies, access};
use crate::account::rules::{RoleUse, invoke_finding, missing_role_finding, role_at, role_thing};

const INVOKE: &str = "lambda:InvokeFunction";

/// Service roles noted for the run, with the stages they act for.
pub(super) type RoleUses = BTreeMap<String, Vec<RoleUse>>;

/// The role being read: its ARN, its name (what IAM's calls take), the stages it acts for.
struct Subject<'a> {
    arn: &'a str,
    name: &'a str,
    uses: &'a [RoleUse],
}

impl AccountCheck {
    /// Notes that `role` acts for a group whose stage has checks; read by
    /// [`AccountCheck::service_roles`].
    pub(super) fn role_used(&mut self, role: &str, used: RoleUse) {
        let uses = self.role_uses.entry(role.to_string()).or_default();
        if !uses.contains(&used) {
            uses.push(used);
        }
    }

    /// Each noted service role against the aliases of `function_arn` its groups' checks
    /// run in. True when every role was read and its answer certain, allowed or not.
    pub(super) async fn service_roles(&mut self, function_arn: &str) -> bool {
        let roles = std::mem::take(&mut self.role_uses);
        let mut told = !roles.is_empty();
        for (arn, uses) in &roles {
            let name = arn.rsplit('/').next().unwrap_or(arn);
            let role = Subject {
                arn,
                name,
                uses: uses.as_slice(),
            };
            told &= self.service_role(&role, function_arn).await;
        }
        told
    }

    async fn service_role(&mut self, role: &Subject<'_>, function_arn: &str) -> bool {
        self.report.looked_at(role_at(role.uses).environment);
        let Some(policies) = self.role_policies(role).await else {
            return false;
        };
        let aliases: BTreeSet<&str> = role
            .uses
            .iter()
            .flat_map(|u| u.hooks.iter().map(|h| h.appspec_name()))
            .collect();
        let mut verdicts = Vec::new();
        for alias in aliases {
            let target = format!("{function_arn}:{alias}");
            let mut verdict = access(&policies, None, INVOKE, &target);
            // In the same account, the alias's own policy may allow what the role's do not.
            if matches!(verdict, Access::NotGranted | Access::Unknown { .. }) {
                let Ok(own) = self.alias_policy(role, function_arn, alias).await else {
                    return false;
                };
                if let Some(own) = own {
                    verdict = access(&policies, Some(&own), INVOKE, &target);
                }
            }
            verdicts.push((target, verdict));
        }
        let told = !verdicts
            .iter()
            .any(|(_, v)| matches!(v, Access::Unknown { .. }));
        if let Some(f) = invoke_finding(role.arn, role.uses, function_arn, &verdicts) {
            self.report.add(f);
        }
        told
    }

    /// The role's inline and attached policies and its permissions boundary; `None` once a
    /// finding says why they could not be read.
    async fn role_policies(&mut self, role: &Subject<'_>) -> Option<RolePolicies> {
        let read = self.iam.get_role().role_name(role.name).send().await;
        let boundary = match Lookup::of("IAM GetRole", read, &[("NoSuchEntity", "")]) {
            Lookup::Found(out) => out
                .role()
                .and_then(|r| r.permissions_boundary())
                .and_then(|b| b.permissions_boundary_arn())
                .map(str::to_string),
            Lookup::Missing(_) => {
                self.report.add(missing_role_finding(role.arn, role.uses));
                return None;
            }
            Lookup::Unreadable(m) => return self.cannot_read(role, "iam:GetRole", m),
        };
        let mut policies = Vec::new();
        let mut inline = self
            .iam
            .list_role_policies()
            .role_name(role.name)
            .into_paginator()
            .items()
            .send();
        let mut names = Vec::new();
        while let Some(name) = inline.next().await {
            names.push(self.answer(role, "iam:ListRolePolicies", name)?);
        }
        for name in names {
            let read = self
                .iam
                .get_role_policy()
                .role_name(role.name)
                .policy_name(&name)
                .send()
                .await;
            let out = self.answer(role, "iam:GetRolePolicy", read)?;
            policies.push(Policy::from_iam(
                format!("inline policy {name}"),
                out.policy_document(),
            ));
        }
        let mut attached = self
            .iam
            .list_attached_role_policies()
            .role_name(role.name)
            .into_paginator()
            .items()
            .send();
        let mut arns = Vec::new();
        while let Some(one) = attached.next().await {
            let one = self.answer(role, "iam:ListAttachedRolePolicies", one)?;
            arns.extend(one.policy_arn().map(str::to_string));
        }
        for arn in arns {
            let document = self.managed_policy(role, &arn).await?;
            policies.push(Policy::from_iam(format!("managed policy {arn}"), &document));
        }
        let boundary = match boundary {
            Some(arn) => {
                let document = self.managed_policy(role, &arn).await?;
                Some(Policy::from_iam(
                    format!("permissions boundary {arn}"),
                    &document,
                ))
            }
            None => None,
        };
        Some(RolePolicies {
            role_arn: role.arn.to_string(),
            policies,
            boundary,
        })
    }

    /// A managed policy's default version's document, as IAM answers it (read once a run).
    async fn managed_policy(&mut self, role: &Subject<'_>, arn: &str) -> Option<String> {
        if let Some(known) = self.managed_policies.get(arn) {
            return Some(known.clone());
        }
        let read = self.iam.get_policy().policy_arn(arn).send().await;
        let out = self.answer(role, "iam:GetPolicy", read)?;
        let Some(version) = out.policy().and_then(|p| p.default_version_id()) else {
            let m = format!("IAM GetPolicy: {arn} answered no default version");
            return self.cannot_read(role, "iam:GetPolicy", m);
        };
        let version = version.to_string();
        let read = self
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await;
        let out = self.answer(role, "iam:GetPolicyVersion", read)?;
        let document = out
            .policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default()
            .to_string();
        self.managed_policies
            .insert(arn.to_string(), document.clone());
        Some(document)
    }

    /// The alias's resource-based policy (`None`: it has none); `Err` once unreadable.
    async fn alias_policy(
        &mut self,
        role: &Subject<'_>,
        function_arn: &str,
        alias: &str,
    ) -> Result<Option<Policy>, ()> {
        let key = format!("{function_arn}:{alias}");
        let document = match self.alias_policies.get(&key) {
            Some(known) => known.clone(),
            None => {
                let read = self
                    .lambda
                    .get_policy()
                    .function_name(function_arn)
                    .qualifier(alias)
                    .send()
                    .await;
                let document = match Lookup::of(
                    "Lambda GetPolicy",
                    read,
                    &[("ResourceNotFoundException", "")],
                ) {
                    Lookup::Found(out) => out.policy().map(str::to_string),
                    Lookup::Missing(_) => None,
                    Lookup::Unreadable(m) => {
                        let thing = format!("the resource policy of Lambda alias {key}");
                        self.unreadable(role_at(role.uses), thing, "lambda:GetPolicy", m);
                        return Err(());
                    }
                };
                self.alias_policies.insert(key.clone(), document.clone());
                document
            }
        };
        Ok(document.map(|d| Policy::parse(format!("the resource policy of alias {alias}"), &d)))
    }

    /// The answer of an IAM read, or `None` once reported as unreadable.
    fn answer<T, E, R>(
        &mut self,
        role: &Subject<'_>,
        action: &str,
        read: Result<T, SdkError<E, R>>,
    ) -> Option<T>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let operation = action.replacen("iam:", "IAM ", 1);
        match Lookup::of(&operation, read, &[]) {
            Lookup::Found(v) => Some(v),
            Lookup::Missing(m) => self.cannot_read(role, action, m.to_string()),
            Lookup::Unreadable(m) => self.cannot_read(role, action, m),
        }
    }

    fn cannot_read<T>(&mut self, role: &Subject<'_>, action: &str, message: String) -> Option<T> {
        let thing = role_thing(role.arn, role.uses);
        self.unreadable(role_at(role.uses), thing, action, message);
        None
    }
}
