//! Semantic-cache policy, host-agnostic (the edge's Durable Object and the regions'
//! pgvector store both follow it): the **scope** a cached answer must share with a new
//! request before its last user turn is even compared (tenant, model, every message but
//! the last user turn, every generation parameter, and the question's language); the
//! **threshold** rule (a request may only make it stricter); and a cheap **guard** run
//! after the vector match against the known false-hit classes — a negation, a number or
//! a named entity that differs between the two questions.

use serde::{Deserialize, Serialize};

use crate::api::{ChatRequest, Role};
use crate::config::{EmbeddingModel, SemanticCacheSettings, TenantConfig};

use super::{cache_key, is_cacheable, Mode};

/// A request may raise (never lower) its threshold with this header, e.g. `0.97`.
pub const THRESHOLD_HEADER: &str = "x-meridian-semantic-threshold";

/// Whether `req` may use the semantic cache at all (read or store), on either host.
pub fn applies(cfg: &SemanticCacheSettings, mode: Mode, req: &ChatRequest) -> bool {
    let temperature_ok = match (cfg.max_temperature, req.temperature) {
        (Some(max), Some(t)) => t <= f64::from(max),
        _ => true,
    };
    cfg.enabled && mode != Mode::Bypass && is_cacheable(req, cfg.cache_tool_requests) && temperature_ok
}

/// What one lookup found, for telemetry: `hit`, `empty` (nothing in scope), or why the
/// nearest entry was not served; and that entry's similarity. Carried on usage events
/// so the home region can record the edge's lookups as metrics too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lookup {
    pub outcome: String,
    pub nearest: Option<f32>,
}

impl Lookup {
    pub fn hit(similarity: f32) -> Lookup {
        Lookup { outcome: "hit".into(), nearest: Some(similarity) }
    }

    pub fn miss(nearest: Option<f32>, reason: Option<Miss>) -> Lookup {
        Lookup { outcome: reason.map_or("empty", Miss::label).into(), nearest }
    }
}

/// The embedding model and threshold a tenant's lookups use: its own threshold, or the
/// default for its model.
pub fn tenant_policy(cfg: &SemanticCacheSettings, tenant: Option<&TenantConfig>) -> (EmbeddingModel, f32) {
    let model = tenant.map_or(EmbeddingModel::AllMiniLmL6V2, TenantConfig::embedding_model);
    (model, tenant.and_then(|t| t.semantic_cache_threshold).unwrap_or(cfg.threshold_for(model)))
}

/// The scope key and the text to embed, for a request whose last message is a user
/// turn; `None` otherwise (nothing to match semantically). Vectors of different models
/// are not comparable, so the embedding `model` is part of the scope.
pub fn scope(tenant: &str, req: &ChatRequest, model: EmbeddingModel) -> Option<(String, String)> {
    let last = req.messages.last()?;
    if last.role != Role::User {
        return None;
    }
    let question = last.text_content();
    if question.trim().is_empty() {
        return None;
    }
    let mut prefix = req.clone();
    prefix.messages.pop();
    let language = detect_language(&question);
    // The exact-cache key over everything else already covers tenant, model, system
    // prompt, conversation prefix and parameters.
    let key = cache_key(tenant, &prefix);
    Some((format!("{key}:sem:{language}:{}", model.name()), question))
}

/// Function words of the languages whose short questions trigram statistics confuse.
const FUNCTION_WORDS: &[(&str, &[&str])] = &[
    ("eng", &["the", "is", "are", "how", "what", "do", "does", "i", "my", "you", "your", "to", "of", "and", "can", "why", "where", "when", "which", "with", "for", "it", "in"]),
    ("deu", &["der", "die", "das", "ist", "sind", "wie", "was", "ich", "mein", "meine", "sie", "und", "nicht", "kann", "warum", "wo", "wann", "mit", "für", "ein", "eine", "zu"]),
    ("fra", &["le", "la", "les", "est", "sont", "comment", "quoi", "je", "mon", "ma", "mes", "vous", "et", "pas", "puis", "pourquoi", "où", "quand", "avec", "pour", "un", "une", "de", "du"]),
    ("spa", &["el", "la", "los", "las", "es", "son", "cómo", "como", "qué", "yo", "mi", "mis", "usted", "y", "puedo", "por", "dónde", "cuándo", "con", "para", "un", "una", "de", "del"]),
    ("ita", &["il", "lo", "la", "gli", "le", "è", "sono", "come", "cosa", "io", "mio", "mia", "e", "posso", "perché", "dove", "quando", "con", "per", "un", "una", "di"]),
    ("por", &["o", "a", "os", "as", "é", "são", "como", "que", "eu", "meu", "minha", "você", "e", "posso", "por", "onde", "quando", "com", "para", "um", "uma", "de", "do", "da"]),
    ("nld", &["de", "het", "is", "zijn", "hoe", "wat", "ik", "mijn", "u", "jij", "en", "kan", "waarom", "waar", "wanneer", "met", "voor", "een", "van"]),
];

/// ISO 639-3 code of the text's language (`und` when it cannot be told). Short questions
/// are decided by their function words, longer or other-script text by trigram
/// statistics (`whatlang`). A wrong guess only ever costs a miss, never a hit.
pub fn detect_language(text: &str) -> &'static str {
    let ws: Vec<String> = words(text).iter().map(|w| w.to_lowercase()).collect();
    let mut best = ("und", 0usize);
    for (code, list) in FUNCTION_WORDS {
        let n = ws.iter().filter(|w| list.contains(&w.as_str())).count();
        if n > best.1 {
            best = (code, n);
        }
    }
    match whatlang::detect(text) {
        Some(info) if info.is_reliable() => info.lang().code(),
        _ if best.1 > 0 => best.0,
        Some(info) => info.lang().code(),
        None => "und",
    }
}

/// The threshold a lookup uses: the tenant's, or a stricter one the request asks for.
pub fn effective_threshold(tenant: f32, requested: Option<f32>) -> f32 {
    requested.map_or(tenant, |r| r.max(tenant)).min(1.0)
}

/// Why a vector match was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    BelowThreshold,
    Negation,
    Numbers,
    Entities,
}

impl Miss {
    pub fn label(self) -> &'static str {
        match self {
            Miss::BelowThreshold => "below_threshold",
            Miss::Negation => "guard_negation",
            Miss::Numbers => "guard_number",
            Miss::Entities => "guard_entity",
        }
    }
}

/// Serve the cached answer to `asked`, given its nearest cached question and similarity?
pub fn decide(similarity: f32, threshold: f32, cached: &str, asked: &str, guard_on: bool) -> Result<(), Miss> {
    if similarity < threshold {
        return Err(Miss::BelowThreshold);
    }
    if guard_on {
        guard(cached, asked)?;
    }
    Ok(())
}

const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "without", "cannot", "cant", "dont", "doesnt", "isnt", "arent", "wasnt",
    "werent", "wont", "wouldnt", "shouldnt", "couldnt", "didnt", "hasnt", "havent", "hadnt", "mustnt", "neednt", "except", "excluding", "nicht", "kein", "keine",
    "nie", "pas", "jamais", "sans", "sin", "nunca", "non", "mai", "senza", "nao", "não", "niet", "geen",
];

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’' || c == '.' || c == ','))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn negations(ws: &[String]) -> usize {
    ws.iter()
        .filter(|w| {
            let l = w.to_lowercase().replace(['\'', '’'], "");
            NEGATIONS.contains(&l.as_str()) || l.ends_with("nt") && NEGATIONS.contains(&l.as_str())
        })
        .count()
}

fn numbers(ws: &[String]) -> Vec<String> {
    let mut n: Vec<String> = ws.iter().filter(|w| w.chars().any(|c| c.is_ascii_digit())).map(|w| w.replace(',', "")).collect();
    n.sort();
    n
}

/// Capitalised words not at the start of a sentence, and words mixing letters and
/// digits: a cheap stand-in for named entities.
fn entities(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for sentence in text.split(['.', '?', '!', '\n']) {
        for (i, w) in words(sentence).iter().enumerate() {
            let capital = w.chars().next().is_some_and(char::is_uppercase);
            let pronoun = matches!(w.to_lowercase().replace('’', "'").as_str(), "i" | "i'm" | "i've" | "i'd" | "i'll");
            if pronoun {
                continue;
            }
            if (capital && i > 0) || w.chars().filter(|c| c.is_uppercase()).count() > 1 {
                out.push(w.to_lowercase());
            }
        }
    }
    out
}

/// The cheap check after a vector match. Entities must appear in the other question too
/// (case-insensitively), so "reset my password in Chrome" still matches "how to reset
/// a chrome password".
pub fn guard(cached: &str, asked: &str) -> Result<(), Miss> {
    let (a, b) = (words(cached), words(asked));
    if negations(&a) != negations(&b) {
        return Err(Miss::Negation);
    }
    if numbers(&a) != numbers(&b) {
        return Err(Miss::Numbers);
    }
    let lower = |ws: &[String]| ws.iter().map(|w| w.to_lowercase()).collect::<Vec<_>>();
    let (la, lb) = (lower(&a), lower(&b));
    if entities(cached).iter().any(|e| !lb.contains(e)) || entities(asked).iter().any(|e| !la.contains(e)) {
        return Err(Miss::Entities);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Message;

    fn req(msgs: Vec<Message>) -> ChatRequest {
        ChatRequest { model: "m".into(), messages: msgs, ..Default::default() }
    }

    #[test]
    fn scope_covers_everything_but_the_last_user_turn() {
        const M: EmbeddingModel = EmbeddingModel::AllMiniLmL6V2;
        let q = |t: &str| req(vec![Message::text(Role::System, "be brief"), Message::text(Role::User, t)]);
        let (a, qa) = scope("t1", &q("How do I reset my password?"), M).unwrap();
        let (b, _) = scope("t1", &q("How can I change my password?"), M).unwrap();
        assert_eq!(a, b, "paraphrases share a scope");
        assert_eq!(qa, "How do I reset my password?");
        assert_ne!(a, scope("t2", &q("How do I reset my password?"), M).unwrap().0, "tenant");
        let other_system = req(vec![Message::text(Role::System, "be verbose"), Message::text(Role::User, "How do I reset my password?")]);
        assert_ne!(a, scope("t1", &other_system, M).unwrap().0, "system prompt");
        let mut hot = q("How do I reset my password?");
        hot.temperature = Some(1.5);
        assert_ne!(a, scope("t1", &hot, M).unwrap().0, "generation parameters");
        let (fr, _) = scope("t1", &q("Comment réinitialiser mon mot de passe ?"), M).unwrap();
        assert_ne!(a, fr, "language");
        assert!(scope("t1", &req(vec![Message::text(Role::Assistant, "hi")]), M).is_none());
        for (text, lang) in [
            ("How do I reset my password?", "eng"),
            ("Wie setze ich mein Passwort zurück?", "deu"),
            ("Comment réinitialiser mon mot de passe ?", "fra"),
            ("¿Cómo restablezco mi contraseña?", "spa"),
            ("Hoe reset ik mijn wachtwoord?", "nld"),
        ] {
            assert_eq!(detect_language(text), lang, "{text}");
        }
        assert_ne!(a, scope("t1", &q("How do I reset my password?"), EmbeddingModel::MultilingualE5Small).unwrap().0, "embedding model");
    }

    #[test]
    fn threshold_can_only_be_made_stricter() {
        assert_eq!(effective_threshold(0.92, None), 0.92);
        assert_eq!(effective_threshold(0.92, Some(0.5)), 0.92);
        assert_eq!(effective_threshold(0.92, Some(0.97)), 0.97);
        assert_eq!(effective_threshold(0.92, Some(3.0)), 1.0);
    }

    #[test]
    fn guard_rejects_the_known_false_hit_classes() {
        assert_eq!(guard("How do I reset my password in Chrome?", "how to reset a chrome password"), Ok(()));
        assert_eq!(guard("Can I cancel my order?", "Can I not cancel my order?"), Err(Miss::Negation));
        assert_eq!(guard("Is it safe to eat eggs?", "Isn't it safe to eat eggs?"), Err(Miss::Negation));
        assert_eq!(guard("What is 15% of 200?", "What is 15% of 300?"), Err(Miss::Numbers));
        assert_eq!(guard("Flights from Paris to Rome", "Flights from Paris to Milan"), Err(Miss::Entities));
        assert_eq!(guard("What is the capital of France?", "What is the capital of Germany?"), Err(Miss::Entities));
        assert_eq!(decide(0.95, 0.92, "a", "a", true), Ok(()));
        assert_eq!(decide(0.90, 0.92, "a", "a", true), Err(Miss::BelowThreshold));
        assert_eq!(decide(0.99, 0.92, "Can I cancel?", "Can't I cancel?", false), Ok(()), "guard off");
    }
}
