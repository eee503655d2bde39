//! Chatbots over HTTP (`/v1/chatbots`): a chatbot is a knowledge base, a model and
//! instructions; `POST /v1/chatbots/{id}/chat` answers grounded in the knowledge base,
//! through the same gateway path (routing, failover, streaming) as any chat request.

pub mod chat;
pub mod manage;
