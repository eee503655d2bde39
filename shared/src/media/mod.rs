//! Media generation, host-agnostic: the OpenAI-compatible requests for images, speech,
//! transcription and video and their validation (`request`), the job a request becomes
//! and its life cycle (`job`), and the media providers' wire formats (`providers`: build
//! the upstream call, parse its answer, classify its errors), and the deployments' health
//! for the driver (`fleet`). The regional backend queues
//! jobs, runs them in workers and stores the results; nothing here does I/O.

pub mod fleet;
pub mod job;
pub mod providers;
pub mod request;

pub use job::{JobEvent, JobStatus};
pub use request::{ImageRequest, MediaKind, MediaRequest, SpeechRequest, TranscriptionRequest, VideoRequest};
