//! all-MiniLM-L6-v2 (384 dimensions) on candle's BERT: WordPiece tokens (truncated at the
//! model's 256-token sequence limit), masked mean pooling, L2 normalisation — the
//! sentence-transformers recipe, checked against an independent reference in the tests.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use super::{Embed, EmbedError, Role};

/// sentence-transformers' `max_seq_length` for this model.
pub const MAX_TOKENS: usize = 256;
pub const DIMS: usize = 384;
pub const NAME: &str = "all-minilm-l6-v2";
/// Texts per forward pass: large enough to use both cores, small enough that padding
/// to the longest text in a batch stays cheap.
const BATCH: usize = 32;

pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    /// The same vocabulary without truncation or padding, for counting and chunking.
    plain: Tokenizer,
    name: String,
}

fn load_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Load(e.to_string())
}

fn run_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Run(e.to_string())
}

impl MiniLm {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<MiniLm, EmbedError> {
        let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| EmbedError::Load(format!("{}: {e}", dir.join(f).display())));
        let config: Config = serde_json::from_slice(&read("config.json")?).map_err(load_err)?;
        let mut plain = Tokenizer::from_bytes(read("tokenizer.json")?).map_err(load_err)?;
        plain.with_truncation(None).map_err(load_err)?;
        plain.with_padding(None);
        let mut tokenizer = plain.clone();
        tokenizer.with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() })).map_err(load_err)?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        let vb = VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &Device::Cpu).map_err(load_err)?;
        let model = BertModel::load(vb, &config).map_err(load_err)?;
        Ok(MiniLm { model, tokenizer, plain, name: NAME.into() })
    }

    /// Token count of `text` under this model's tokenizer (no special tokens).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.plain.encode(text, false).map(|e| e.len()).unwrap_or(0)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(run_err)?;
        let rows = encodings.len();
        let cols = encodings.first().map(|e| e.len()).unwrap_or(0);
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> { encodings.iter().flat_map(|e| f(e).iter().copied()).collect() };
        let dev = &Device::Cpu;
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (rows, cols), dev).map_err(run_err)?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (rows, cols), dev).map_err(run_err)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (rows, cols), dev).map_err(run_err)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask)).map_err(run_err)?;
        // Mean over the real (unmasked) tokens, then unit length.
        let mask = mask.to_dtype(DType::F32).map_err(run_err)?.unsqueeze(2).map_err(run_err)?;
        let summed = hidden.broadcast_mul(&mask).and_then(|t| t.sum(1)).map_err(run_err)?;
        let counts = mask.sum(1).map_err(run_err)?;
        let mean = summed.broadcast_div(&counts).map_err(run_err)?;
        let norm = mean.sqr().and_then(|t| t.sum_keepdim(1)).and_then(|t| t.sqrt()).map_err(run_err)?;
        let unit = mean.broadcast_div(&norm).map_err(run_err)?;
        unit.to_vec2::<f32>().map_err(run_err)
    }
}

impl Embed for MiniLm {
    fn model(&self) -> &str {
        &self.name
    }

    fn dims(&self) -> usize {
        DIMS
    }

    fn max_tokens(&self) -> usize {
        MAX_TOKENS
    }

    /// Symmetric: questions and passages are embedded alike.
    fn embed_as(&self, texts: &[&str], _role: Role) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            out.extend(self.embed_batch(batch)?);
        }
        Ok(out)
    }
}

impl crate::rag::chunk::Tokenize for MiniLm {
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        match self.plain.encode(text, false) {
            Ok(e) => e.get_offsets().to_vec(),
            Err(_) => crate::rag::chunk::WordTokenizer.token_spans(text),
        }
    }
}
