//! `multipart/form-data` bodies (RFC 7578) for uploads to providers.

/// Builds a body from text fields and one file; returns (content type, body).
pub fn form(fields: &[(&str, &str)], file: (&str, &str, &str, &[u8]), boundary: &str) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    let (name, filename, content_type, bytes) = file;
    let safe: String = filename.chars().filter(|c| *c != '"' && *c != '\r' && *c != '\n').collect();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{safe}\"\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_then_the_file_then_the_closing_boundary() {
        let (ct, body) = super::form(&[("model", "whisper-1")], ("file", "a\".wav", "audio/wav", b"RIFF"), "b0");
        assert_eq!(ct, "multipart/form-data; boundary=b0");
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            "--b0\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--b0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--b0--\r\n"
        );
    }
}
