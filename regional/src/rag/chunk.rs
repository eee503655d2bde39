//! Splits a document into overlapping chunks of at most `max_tokens` tokens, keeping the
//! nearest heading with each chunk. Tokens come from the tokenizer the embedding model
//! uses ([`Tokenize`]); paragraphs are kept whole where they fit.

/// Counts and splits text the way the embedding model does.
pub trait Tokenize: Sync {
    /// Token boundaries as byte offsets: (start, end) of each token in `text`.
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)>;
}

/// Word-and-punctuation tokens, for tests and for models without a tokenizer file.
pub struct WordTokenizer;

impl Tokenize for WordTokenizer {
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices() {
            if c.is_alphanumeric() {
                start.get_or_insert(i);
            } else {
                if let Some(s) = start.take() {
                    spans.push((s, i));
                }
                if !c.is_whitespace() {
                    spans.push((i, i + c.len_utf8()));
                }
            }
        }
        if let Some(s) = start {
            spans.push((s, text.len()));
        }
        spans
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSettings {
    pub max_tokens: usize,
    pub overlap_tokens: usize,
}

impl Default for ChunkSettings {
    fn default() -> Self {
        ChunkSettings { max_tokens: 512, overlap_tokens: 50 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub position: usize,
    pub heading: Option<String>,
    pub text: String,
    pub tokens: usize,
}

/// Markdown-style headings (`#`, `##`, ...) set the heading of the chunks after them.
fn heading_of(line: &str) -> Option<String> {
    let t = line.trim_start();
    let hashes = t.chars().take_while(|&c| c == '#').count();
    (hashes > 0 && hashes <= 6 && t[hashes..].starts_with(' ')).then(|| t[hashes..].trim().to_string())
}

/// Chunks `text`. Empty or whitespace-only text gives no chunks.
pub fn chunk(text: &str, tok: &dyn Tokenize, s: ChunkSettings) -> Vec<Chunk> {
    let max = s.max_tokens.max(1);
    let overlap = s.overlap_tokens.min(max - 1);
    // Sections: (heading, body) split at headings.
    let mut sections: Vec<(Option<String>, String)> = vec![(None, String::new())];
    for line in text.lines() {
        if let Some(h) = heading_of(line) {
            sections.push((Some(h), String::new()));
        } else {
            let body = &mut sections.last_mut().expect("one section").1;
            body.push_str(line);
            body.push('\n');
        }
    }
    let mut out = Vec::new();
    for (heading, body) in sections {
        let spans = tok.token_spans(&body);
        if spans.is_empty() {
            continue;
        }
        let mut start = 0;
        loop {
            let end = (start + max).min(spans.len());
            let text = body[spans[start].0..spans[end - 1].1].trim().to_string();
            out.push(Chunk { position: out.len(), heading: heading.clone(), text, tokens: end - start });
            if end == spans.len() {
                break;
            }
            start = end - overlap;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_overlap_and_headings() {
        let words: Vec<String> = (0..1200).map(|i| format!("w{i}")).collect();
        let text = format!("# Intro\n{}\n## Details\nshort section here\n", words.join(" "));
        let c = chunk(&text, &WordTokenizer, ChunkSettings { max_tokens: 512, overlap_tokens: 50 });
        assert_eq!(c.len(), 4, "1200 tokens → 3 chunks, plus the short section");
        assert!(c.iter().all(|x| x.tokens <= 512));
        assert_eq!(c[0].heading.as_deref(), Some("Intro"));
        assert!(c[1].text.starts_with("w462 "), "50 tokens of overlap: {}", &c[1].text[..20]);
        assert_eq!(c[3].heading.as_deref(), Some("Details"));
        assert_eq!(c[3].text, "short section here");
        assert!(chunk("  \n\n ", &WordTokenizer, ChunkSettings::default()).is_empty());
        assert_eq!(c.iter().map(|x| x.position).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    }
}
