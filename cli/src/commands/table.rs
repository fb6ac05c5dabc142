//! `shiplane table create`: the table itself, for the local emulator or an account not
//! using template.yaml.

use shiplane::store::DynamoStore;

use super::Context;
use crate::Failure;
use crate::output::outln;

/// Creates the table with its keys, index and TTL.
pub(super) async fn create(cx: &Context<'_>) -> Result<(), Failure> {
    let table = &cx.cli.table;
    let client = aws_sdk_dynamodb::Client::new(cx.config);
    DynamoStore::create_table(&client, table)
        .await
        .map_err(|e| Failure::Aws(format!("cannot create table {table}: {e}")))?;
    outln!("created table {table}");
    Ok(())
}
