//! An AWS failure as one line a person can act on at 3 a.m.: what is wrong, named (the
//! table, the IAM action, the region), and the fix; never the SDK's debug dump.

use aws_config::SdkConfig;
use aws_sdk_sts::config::ProvideCredentials;

/// What `message` (a failed command's error) means, given the AWS setup the command ran
/// with. Checks the region and the credentials first, since without them every call fails
/// whatever it was; a failure that is not about AWS is returned on one line, as it was.
pub async fn explain(config: &SdkConfig, table: &str, message: &str) -> String {
    if let Some(setup) = explain_setup(config).await {
        return setup;
    }
    let region = config
        .region()
        .map(std::string::ToString::to_string)
        .unwrap_or_default();
    explain_text(message, table, &region, config.endpoint_url())
}

/// What is missing for any AWS call to work (a region, credentials), if anything.
pub async fn explain_setup(config: &SdkConfig) -> Option<String> {
    if config.region().is_none() {
        return Some("no AWS region is set: export AWS_REGION=<the stack's region> (e.g. eu-west-1), or keep it in the settings with `AWS_REGION=<region> shiplane init --stack NAME`".into());
    }
    match config.credentials_provider() {
        Some(provider) if provider.provide_credentials().await.is_ok() => None,
        _ => Some("no AWS credentials found: sign in (`aws sso login --profile NAME` and export AWS_PROFILE=NAME) or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()),
    }
}

/// The part of [`explain`] that reads only the message (so it is unit-tested).
fn explain_text(message: &str, table: &str, region: &str, endpoint: Option<&str>) -> String {
    if let Some(action) = after(message, "not authorized to perform: ") {
        let resource = after(message, "on resource: ")
            .map(|r| format!(" on {r}"))
            .unwrap_or_default();
        return format!(
            "permission denied: your AWS identity may not call {action}{resource}; ask for {action} in your IAM policy (or use a role that has it)"
        );
    }
    if message.contains("AccessDenied") {
        return format!(
            "permission denied by AWS ({}); ask for the permission this command needs in your IAM policy",
            one_line(message)
        );
    }
    if message.contains("ResourceNotFoundException") && message.contains("DynamoDB") {
        return format!(
            "no table \"{table}\" in {region}: use the stack's (`shiplane init --stack NAME`, or --table / SHIPLANE_TABLE), create it with `shiplane table create`, or set AWS_REGION to the region it is in"
        );
    }
    if [
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    ]
    .iter()
    .any(|code| message.contains(code))
    {
        return "AWS refused your credentials (unknown, expired or for another partition): sign in again (`aws sso login`), or check AWS_PROFILE and AWS_ACCESS_KEY_ID".into();
    }
    if [
        "dispatch failure",
        "io error",
        "dns error",
        "timed out",
        "timeout",
    ]
    .iter()
    .any(|s| message.contains(s))
    {
        let whom = endpoint.map_or_else(
            || format!("AWS in {region}"),
            std::string::ToString::to_string,
        );
        return format!(
            "cannot reach {whom}: check the network and that AWS_REGION ({region}) is a region{}",
            if endpoint.is_some() {
                "; for the local emulator, that it runs there (make emulator) and AWS_ENDPOINT_URL points at it"
            } else {
                ""
            }
        );
    }
    one_line(message)
}

/// The word after `marker` in `text`, without trailing punctuation.
fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let word = rest
        .split_whitespace()
        .next()?
        .trim_end_matches([',', '.', ';']);
    (!word.is_empty()).then_some(word)
}

/// The first line of `message`, cut before any debug dump of an SDK type (`Foo { … }`).
pub fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let cut = first
        .find(" (")
        .filter(|&i| first[i..].contains(" { ") || first[i..].contains("Error("))
        .unwrap_or(first.len());
    first[..cut].trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_names_the_action_and_the_resource() {
        let m = "store failed: DynamoDB: AccessDeniedException: User: arn:aws:iam::1:user/ana is not authorized to perform: dynamodb:Query on resource: arn:aws:dynamodb:eu-west-1:1:table/shiplane because no identity-based policy allows the dynamodb:Query action";
        assert_eq!(
            explain_text(m, "shiplane", "eu-west-1", None),
            "permission denied: your AWS identity may not call dynamodb:Query on arn:aws:dynamodb:eu-west-1:1:table/shiplane; ask for dynamodb:Query in your IAM policy (or use a role that has it)"
        );
    }

    #[test]
    fn a_missing_table_is_named_with_its_region() {
        let m = "store failed: DynamoDB: ResourceNotFoundException: Requested resource not found";
        let e = explain_text(m, "shiplane", "eu-west-1", None);
        assert!(e.starts_with("no table \"shiplane\" in eu-west-1: "), "{e}");
    }

    #[test]
    fn a_debug_dump_is_cut() {
        assert_eq!(
            one_line(
                "DynamoDB: dispatch failure (DispatchFailure(DispatchFailure { source: ConnectorError { kind: Io }}))\nmore"
            ),
            "DynamoDB: dispatch failure"
        );
        assert_eq!(one_line("plain (with a note)"), "plain (with a note)");
    }
}
