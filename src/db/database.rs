//! The database itself, from a session on another one (a maintenance database or a scratch
//! server): whether it exists, creating and dropping it.

use tokio_postgres::Client;

use super::quote_ident;

/// Whether a database of this name exists on the server.
pub async fn exists(client: &Client, name: &str) -> anyhow::Result<bool> {
    let rows = super::state::unnamed(
        client,
        "SELECT 1 FROM pg_database WHERE datname = $1",
        &[&name],
    )
    .await?;
    Ok(!rows.is_empty())
}

/// Which database a new one is copied from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// The server's default (`template1`, with whatever was added to it).
    Default,
    /// `template0`: the pristine catalog, nothing added (for a scratch database).
    Pristine,
}

/// `CREATE DATABASE name`.
pub async fn create(
    client: &Client,
    name: &str,
    template: Template,
) -> Result<(), tokio_postgres::Error> {
    let template = match template {
        Template::Default => "",
        Template::Pristine => " TEMPLATE template0",
    };
    client
        .batch_execute(&format!("CREATE DATABASE {}{template}", quote_ident(name)))
        .await
}

/// `DROP DATABASE IF EXISTS name`, ending its other sessions first when `force` says so.
pub async fn drop(client: &Client, name: &str, force: bool) -> Result<(), tokio_postgres::Error> {
    let force = if force { " WITH (FORCE)" } else { "" };
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {}{force}",
            quote_ident(name)
        ))
        .await
}
