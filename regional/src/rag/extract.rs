//! Document bytes → plain text with Markdown-style headings, by media type: plain text,
//! Markdown, HTML (rendered to text, headings kept as `#` lines) and PDF. Anything else,
//! anything empty, and anything that does not parse as what it claims is refused with
//! a reason the API can show.

/// The kinds of document we ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Html,
    Pdf,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain",
            Format::Markdown => "text/markdown",
            Format::Html => "text/html",
            Format::Pdf => "application/pdf",
        }
    }

    /// From a declared media type (parameters ignored), else the file name's extension,
    /// else sniffed from the bytes (`%PDF-`, `<html`/`<!doctype html`).
    pub fn detect(media_type: Option<&str>, file_name: Option<&str>, bytes: &[u8]) -> Result<Format, ExtractError> {
        let declared = media_type.map(|m| m.split(';').next().unwrap_or("").trim().to_ascii_lowercase()).filter(|m| !m.is_empty() && m != "application/octet-stream");
        if let Some(m) = declared {
            return match m.as_str() {
                "text/plain" => Ok(Format::Text),
                "text/markdown" | "text/x-markdown" => Ok(Format::Markdown),
                "text/html" | "application/xhtml+xml" => Ok(Format::Html),
                "application/pdf" => Ok(Format::Pdf),
                _ => Err(ExtractError::Unsupported(m)),
            };
        }
        if let Some(ext) = file_name.and_then(|n| n.rsplit_once('.')).map(|(_, e)| e.to_ascii_lowercase()) {
            return match ext.as_str() {
                "txt" | "text" => Ok(Format::Text),
                "md" | "markdown" => Ok(Format::Markdown),
                "html" | "htm" => Ok(Format::Html),
                "pdf" => Ok(Format::Pdf),
                _ => Err(ExtractError::Unsupported(format!(".{ext}"))),
            };
        }
        let head: String = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).trim_start().to_ascii_lowercase();
        if bytes.starts_with(b"%PDF-") {
            Ok(Format::Pdf)
        } else if head.starts_with("<!doctype html") || head.starts_with("<html") {
            Ok(Format::Html)
        } else if std::str::from_utf8(bytes).is_ok() {
            Ok(Format::Text)
        } else {
            Err(ExtractError::Unsupported("binary data of unknown type".into()))
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExtractError {
    #[error("unsupported document type {0}: send text/plain, text/markdown, text/html or application/pdf")]
    Unsupported(String),
    #[error("the document has no text")]
    Empty,
    #[error("the document is not valid UTF-8 text")]
    NotUtf8,
    #[error("the PDF could not be read: {0}")]
    BadPdf(String),
    #[error("the HTML could not be read: {0}")]
    BadHtml(String),
}

/// Extracts the text of `bytes` as `format`. CPU-bound (PDF especially): run it on a
/// blocking thread.
pub fn extract(format: Format, bytes: &[u8]) -> Result<String, ExtractError> {
    let text = match format {
        Format::Text | Format::Markdown => std::str::from_utf8(bytes).map_err(|_| ExtractError::NotUtf8)?.to_string(),
        Format::Html => html2text::config::plain().string_from_read(bytes, 100_000).map_err(|e| ExtractError::BadHtml(e.to_string()))?,
        Format::Pdf => pdf_text(bytes)?,
    };
    let text = text.replace("\r\n", "\n").replace('\u{0}', "");
    if text.trim().is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(text)
}

fn pdf_text(bytes: &[u8]) -> Result<String, ExtractError> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(ExtractError::BadPdf("missing %PDF- header".into()));
    }
    // The PDF parser panics on some malformed files; a bad upload must be a 400, not a
    // dead worker thread.
    match std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes)) {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(ExtractError::BadPdf(e.to_string().chars().take(200).collect())),
        Err(_) => Err(ExtractError::BadPdf("the file is malformed".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_type_then_extension_then_content() {
        assert_eq!(Format::detect(Some("text/markdown; charset=utf-8"), None, b""), Ok(Format::Markdown));
        assert_eq!(Format::detect(Some("application/octet-stream"), Some("a.PDF"), b""), Ok(Format::Pdf));
        assert_eq!(Format::detect(None, None, b"<!DOCTYPE html><p>x"), Ok(Format::Html));
        assert_eq!(Format::detect(None, None, b"%PDF-1.4"), Ok(Format::Pdf));
        assert_eq!(Format::detect(None, None, b"plain words"), Ok(Format::Text));
        assert!(matches!(Format::detect(Some("image/png"), None, b""), Err(ExtractError::Unsupported(_))));
        assert!(matches!(Format::detect(None, Some("x.docx"), b""), Err(ExtractError::Unsupported(_))));
        assert!(matches!(Format::detect(None, None, &[0xff, 0xfe, 0x00, 0x81]), Err(ExtractError::Unsupported(_))));
    }

    #[test]
    fn html_keeps_headings_and_drops_markup() {
        let t = extract(Format::Html, b"<html><body><h1>Refunds</h1><p>Within <b>14</b> days.</p><script>x()</script></body></html>").unwrap();
        assert!(t.contains("# Refunds"), "{t}");
        // Emphasis stays as Markdown (`**14**`), which reads and indexes like the text.
        assert!(t.contains("Within **14** days."), "{t}");
        assert!(!t.contains("x()"), "scripts are dropped: {t}");
        assert!(!t.contains('<'));
    }

    #[test]
    fn refuses_empty_and_malformed() {
        assert_eq!(extract(Format::Text, b"  \n\t "), Err(ExtractError::Empty));
        assert_eq!(extract(Format::Text, &[0xc3, 0x28]), Err(ExtractError::NotUtf8));
        assert!(matches!(extract(Format::Pdf, b"%PDF-1.4\ngarbage that is not a pdf"), Err(ExtractError::BadPdf(_))));
        assert!(matches!(extract(Format::Pdf, b"hello"), Err(ExtractError::BadPdf(_))));
    }
}
