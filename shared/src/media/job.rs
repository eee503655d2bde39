//! A media job's life cycle: `queued → running → succeeded | failed`, with `cancelled`
//! reachable until the job has finished, and `running → queued` when an attempt failed
//! and will be retried (or its worker vanished). Finished states are final: a job
//! succeeds at most once.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn from_name(s: &str) -> Option<JobStatus> {
        [JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Cancelled].into_iter().find(|k| k.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled)
    }

    /// Whether a job may move from `self` to `to`.
    pub fn may_become(self, to: JobStatus) -> bool {
        use JobStatus::*;
        matches!((self, to), (Queued, Running) | (Running, Queued) | (Running, Succeeded) | (Running, Failed) | (Queued, Failed) | (Queued | Running, Cancelled))
    }
}

/// What subscribers (SSE, WebSocket, webhooks) are told, in order, for each job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// `job.queued`, `job.started`, `job.progress`, `job.succeeded`, `job.failed`, `job.cancelled`.
    #[serde(rename = "type")]
    pub kind: String,
    pub job_id: String,
    pub tenant: String,
    pub status: JobStatus,
    /// 0.0–1.0 for `job.progress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f32>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix seconds.
    pub at: u64,
}

impl JobEvent {
    pub fn new(kind: &str, job_id: &str, tenant: &str, status: JobStatus, at: u64) -> JobEvent {
        JobEvent { kind: format!("job.{kind}"), job_id: job_id.into(), tenant: tenant.into(), status, progress: None, reason: None, at }
    }
}

#[cfg(test)]
mod tests {
    use super::JobStatus::*;

    #[test]
    fn finished_jobs_never_change_and_a_job_succeeds_at_most_once() {
        for done in [Succeeded, Failed, Cancelled] {
            assert!(done.is_final());
            for to in [Queued, Running, Succeeded, Failed, Cancelled] {
                assert!(!done.may_become(to), "{done:?} → {to:?}");
            }
        }
        assert!(Queued.may_become(Running) && Running.may_become(Succeeded) && Running.may_become(Queued));
        assert!(Queued.may_become(Cancelled) && Running.may_become(Cancelled));
        assert!(!Queued.may_become(Succeeded), "only a running job succeeds");
    }
}
