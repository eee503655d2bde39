//! Media generation as durable jobs: the API creates a job in PostgreSQL
//! (`store`) and enqueues it in Redis (`queue`); workers (`worker`) take it, run it on the
//! media deployments with failover (`execute`) under supervision (`supervise`: lease,
//! progress, cancellation, shutdown), store the files in the region's object
//! store under the tenant's prefix, and announce every state change (`events`, and the
//! tenant's signed `webhook`).

pub mod events;
pub mod execute;
pub mod fleet;
pub mod queue;
pub mod store;
pub mod supervise;
pub mod webhook;
pub mod worker;
