//! The end-to-end harness shared by every test: real processes on loopback, started on
//! port 0, ready when they report their address (stdout line or workerd's control fd, no
//! sleeps), killed on `Drop`.
//!
//! ```ignore
//! let s = Stack::start(Setup::models("deployments: [...]\nmodels: [...]")).await;
//! let r = s.chat(json!({"model": "m", "messages": user("hi")})).await;
//! ```

mod data;
mod documents;
mod edge;
mod host;
mod idp;
mod proc;
mod services;
mod sse;
mod stack;
mod webhook;

pub use data::{tenant_database, DataServices};
pub use documents::{pdf, serve_pages};
pub use edge::{start_workerd, EdgeSetup, EdgeStack, INTERNAL_SECRET};
pub use host::{Gateway, Host};
pub use idp::Idp;
pub use proc::{bin, start_mock, start_mock_with, Proc};
pub use services::{models_dir, Postgres, Redis, S3};
pub use sse::{read_sse, Sse};
pub use stack::{fixture, header, mock_answer, mock_answer_at, new_key, user, Setup, Stack, DEAD_URL};
pub use webhook::WebhookSink;
