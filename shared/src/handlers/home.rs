//! `GET /` on `latchkey serve` only (not a Lambda, not in `template.yaml`): the front door. A small
//! page, no JavaScript: what is running, the issuer and its metadata URL, how many resource servers,
//! clients and projects exist (three scans: an admin-ish page for the local server, never on a
//! deployed path), and the next command to run.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use super::server_error;
use crate::http::html::{error_page, escape, page};
use crate::http::request;
use crate::state::AppState;

/// What the front door counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub resource_servers: usize,
    pub clients: usize,
    pub projects: usize,
}

pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return error_page(StatusCode::METHOD_NOT_ALLOWED, "use GET");
    }
    let base = request::public_base(&state.config, &req);
    let now = state.clock.now();
    let (rs, clients, projects) = tokio::join!(
        state.store.list_resource_servers(now),
        state.store.list_clients(now),
        state.store.list_projects(now),
    );
    let counts = match (rs, clients, projects) {
        (Ok(rs), Ok(c), Ok(p)) => Counts {
            resource_servers: rs.len(),
            clients: c.len(),
            projects: p.len(),
        },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return server_error("home: counting failed", e),
    };
    let issuer = state.config.issuer_for(&base);
    let metadata = format!("{base}/.well-known/oauth-authorization-server/oauth/2.1");
    page(StatusCode::OK, "latchkey is running", &body(&issuer, &metadata, counts))
}

/// The next command an operator would run, with what it is for.
pub fn next_step(counts: Counts) -> (&'static str, &'static str) {
    if counts.resource_servers == 0 {
        (
            "Register the MCP server that should trust latchkey (its canonical URL), with words for its scopes:",
            "latchkey resource-server create --resource https://mcp.example.com/mcp \\\n  --scope \"mcp:tools=Run this server's tools\"",
        )
    } else if counts.projects == 0 {
        (
            "Create a project and its API key for the token vault and remote MCP servers:",
            "latchkey project create \"My app\"",
        )
    } else {
        (
            "Point an MCP client at your MCP server; it finds latchkey through the server's protected resource metadata. To see what is registered:",
            "latchkey resource-server list",
        )
    }
}

fn body(issuer: &str, metadata: &str, counts: Counts) -> String {
    let (why, command) = next_step(counts);
    format!(
        "<h1>latchkey is running</h1>\
<p>OAuth for MCP on this machine: an OAuth 2.1 authorization server for MCP servers, a token vault, and OAuth for remote MCP servers. \
This page is served by <code>latchkey serve</code> only.</p>\
<table class=\"facts\">\
<tr><td>Issuer</td><td><code class=\"id\">{issuer}</code></td></tr>\
<tr><td>Metadata</td><td><a href=\"{metadata}\"><code class=\"id\">{metadata}</code></a></td></tr>\
<tr><td>Resource servers</td><td><strong id=\"resource-servers\">{rs}</strong></td></tr>\
<tr><td>Clients</td><td><strong id=\"clients\">{clients}</strong></td></tr>\
<tr><td>Projects</td><td><strong id=\"projects\">{projects}</strong></td></tr>\
</table>\
<h2>Next</h2><p>{why}</p><pre><code>{command}</code></pre>\
<p class=\"muted\">Admin commands work while <code>serve</code> runs. <code>latchkey --help</code> lists them.</p>",
        issuer = escape(issuer),
        metadata = escape(metadata),
        rs = counts.resource_servers,
        clients = counts.clients,
        projects = counts.projects,
        why = escape(why),
        command = escape(command),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_command_follows_what_exists() {
        let none = Counts {
            resource_servers: 0,
            clients: 0,
            projects: 0,
        };
        assert!(next_step(none)
            .1
            .starts_with("latchkey resource-server create --resource"));
        let rs = Counts {
            resource_servers: 1,
            ..none
        };
        assert!(next_step(rs).1.starts_with("latchkey project create"));
        let all = Counts { projects: 2, ..rs };
        assert_eq!(next_step(all).1, "latchkey resource-server list");
    }
}
