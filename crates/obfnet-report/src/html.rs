//! The one HTML escaper of the workspace, and the helpers the pages share.
//!
//! [`escape`] is correct in text **and** in quoted attribute values (single or double quotes):
//! it replaces `&`, `<`, `>`, `"` and `'`. Every page (privacy report, comparison, listening
//! page) builds its markup with it; nothing else escapes.

/// Escapes `s` for HTML text and for attribute values in single or double quotes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 (with padding), for `data:` URIs.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// An `<img>` holding PNG `bytes` inline, with an escaped `alt`.
pub fn png_img(bytes: &[u8], alt: &str) -> String {
    format!(
        "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
        escape(alt),
        base64(bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_both_attribute_quotes() {
        assert_eq!(escape("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
        assert_eq!(escape(r#"say "hi" it's"#), "say &quot;hi&quot; it&#39;s");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape("ε ≤ 0.3"), "ε ≤ 0.3");
        // an attribute value cannot be closed from inside, with either quote
        let attr = format!(
            "<td title=\"{}\" data-x='{}'>",
            escape("x\" onmouseover=\"y"),
            escape("'")
        );
        assert_eq!(attr, "<td title=\"x&quot; onmouseover=&quot;y\" data-x='&#39;'>");
        assert!(
            png_img(b"f", "a\"b").starts_with("<img alt=\"a&quot;b\" src=\"data:image/png;base64,Zg==\"")
        );
    }

    #[test]
    fn base64_known_answers() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
