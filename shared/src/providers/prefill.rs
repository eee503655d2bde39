//! Which models accept an assistant prefill — a final, partial assistant turn they carry
//! on from — the only way a broken stream can be continued verifiably. It is a property
//! of the model, not the provider: Claude models before 4.6 accept it, Claude 4.6 and
//! later answer 400 ("This model does not support assistant message prefill").
//! A deployment's `prefill` in the config overrides this table; what the table does not
//! know is not capable.

use super::ProviderKind;

/// Claude's generation from a model id such as `claude-3-5-sonnet-20241022`,
/// `claude-sonnet-4-5-20250929`, `claude-opus-4-6` or `us.anthropic.claude-opus-4-1-v1:0`:
/// (major, minor).
fn claude_generation(model: &str) -> Option<(u32, u32)> {
    let rest = &model[model.find("claude-")? + "claude-".len()..];
    let mut parts = rest.split(['-', '.', ':', '@']);
    let first = parts.next()?;
    let major_text = if ["opus", "sonnet", "haiku"].contains(&first) { parts.next()? } else { first };
    let major: u32 = major_text.parse().ok()?;
    // The minor version is a short number; a date (8 digits) or a name means ".0".
    let minor = match parts.next() {
        Some(p) if p.len() <= 2 => p.parse().unwrap_or(0),
        _ => 0,
    };
    Some((major, minor))
}

/// Whether `model` at a provider of `kind` reached at `base_url` accepts a prefill, as
/// far as the providers document it.
pub fn accepts_prefill(kind: ProviderKind, model: &str, base_url: &str) -> bool {
    match kind {
        // Claude 3.x and 4.0–4.5 continue a final assistant turn; 4.6 and later refuse it.
        ProviderKind::Anthropic => claude_generation(model).is_some_and(|(major, minor)| major == 3 || (major == 4 && minor < 6)),
        // Mistral's chat API continues an assistant message marked `prefix: true`.
        ProviderKind::Mistral => true,
        // DeepSeek's chat prefix completion exists only on its beta endpoint.
        ProviderKind::Deepseek => base_url.trim_end_matches('/').ends_with("/beta"),
        // OpenAI ignores a final assistant turn and starts a new answer; Gemini, vLLM,
        // Ollama and other servers depend on the model and its template: declare it.
        ProviderKind::Openai | ProviderKind::Gemini | ProviderKind::Vllm | ProviderKind::Ollama | ProviderKind::OpenaiCompatible => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_generations() {
        for (m, ok) in [
            ("claude-3-haiku-20240307", true),
            ("claude-3-5-sonnet-20241022", true),
            ("claude-3-7-sonnet-latest", true),
            ("claude-sonnet-4-20250514", true),
            ("claude-opus-4-1-20250805", true),
            ("claude-sonnet-4-5-20250929", true),
            ("claude-haiku-4-5", true),
            ("us.anthropic.claude-opus-4-1-v1:0", true),
            ("claude-opus-4-6", false),
            ("claude-sonnet-4-6", false),
            ("claude-opus-4-7-20260301", false),
            ("claude-sonnet-5", false),
            ("claude-backup", false),
            ("mystery", false),
        ] {
            assert_eq!(accepts_prefill(ProviderKind::Anthropic, m, "https://api.anthropic.com"), ok, "{m}");
        }
    }

    #[test]
    fn other_providers() {
        assert!(accepts_prefill(ProviderKind::Mistral, "mistral-small-latest", "https://api.mistral.ai/v1"));
        assert!(!accepts_prefill(ProviderKind::Deepseek, "deepseek-chat", "https://api.deepseek.com"));
        assert!(accepts_prefill(ProviderKind::Deepseek, "deepseek-chat", "https://api.deepseek.com/beta/"));
        assert!(!accepts_prefill(ProviderKind::Openai, "gpt-4o", "https://api.openai.com/v1"));
        assert!(!accepts_prefill(ProviderKind::Vllm, "llama", "http://vllm:8000/v1"));
    }
}
