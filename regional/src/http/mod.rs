//! What every HTTP handler of the regional host shares: the error envelope ([`error`]:
//! OpenAI's shape, the right status, extra headers), reading a body within its limit and
//! parsing it ([`body`]), and the authenticated caller ([`caller`]).

pub mod body;
pub mod caller;
pub mod error;
