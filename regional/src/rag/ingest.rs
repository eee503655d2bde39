//! Ingest of one document into a knowledge base: detect and extract its text, chunk it
//! with the embedding model's tokenizer, embed the chunks (through the Redis cache), seal
//! the original bytes and the chunk texts with the tenant's data key, store the original
//! in object storage under the tenant's prefix, then write the document row and all its
//! chunks in one transaction. Any failure leaves no rows (and removes the stored object),
//! so the same upload can simply be retried.

use meridian_shared::config::{EmbeddingModel, IngestSettings};
use sqlx::types::Uuid;

use super::chunk::{chunk, ChunkSettings};
use super::extract::{extract, ExtractError, Format};
use super::keywords;
use super::retrieve::vector_literal;
use crate::crypto::Keyring;
use crate::db::{Db, DbError};
use crate::embed::cache::CachedEmbedder;
use crate::embed::{EmbedError, Role};
use crate::objects::{tenant_key, ObjectError, ObjectStore};

/// Everything ingest needs, borrowed from the backend's state.
pub struct Ingestor<'a> {
    pub db: &'a Db,
    pub objects: &'a ObjectStore,
    /// Holds the models: each knowledge base is chunked and embedded with its own.
    pub embedder: &'a CachedEmbedder,
    pub keyring: &'a Keyring,
    pub settings: IngestSettings,
}

pub struct NewDocument {
    pub kb_id: Uuid,
    pub title: String,
    pub media_type: Option<String>,
    pub file_name: Option<String>,
    pub source_url: Option<String>,
    /// Text-search configuration; the knowledge base's when absent.
    pub language: Option<String>,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Ingested {
    pub id: Uuid,
    pub kb_id: Uuid,
    pub title: String,
    pub media_type: &'static str,
    pub language: String,
    pub bytes: usize,
    pub chunks: usize,
    pub tokens: usize,
    pub embeddings_cached: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("knowledge base {0} does not exist")]
    NoKnowledgeBase(Uuid),
    #[error("the document is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error("the document makes {chunks} chunks; the limit is {limit}")]
    TooManyChunks { chunks: usize, limit: usize },
    #[error("unknown text-search language {0:?}")]
    Language(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for IngestError {
    fn from(e: sqlx::Error) -> Self {
        IngestError::Db(DbError::Sql(e))
    }
}

/// Associated data sealed with a chunk's text: the ciphertext opens only as this
/// chunk of this document (the data key already binds the tenant).
pub fn chunk_context(document: Uuid, position: i32) -> String {
    format!("chunk:{document}:{position}")
}

/// Is `name` a text-search configuration this database knows (`english`, `german`, ...)?
pub async fn known_language(conn: &mut sqlx::PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = $1)").bind(name).fetch_one(conn).await
}

impl Ingestor<'_> {
    pub async fn ingest(&self, tenant: &str, doc: NewDocument) -> Result<Ingested, IngestError> {
        let limit = self.settings.max_document_bytes;
        if doc.bytes.len() > limit {
            return Err(IngestError::TooLarge { size: doc.bytes.len(), limit });
        }
        // Fail fast, before any expensive work, on what the database can tell us.
        let (model, which);
        let language = {
            let mut tx = self.db.tenant_tx(tenant).await?;
            let kb: Option<(String, String)> = sqlx::query_as("SELECT language, embedding_model FROM knowledge_bases WHERE id = $1").bind(doc.kb_id).fetch_optional(&mut *tx).await?;
            let (kb_lang, kb_model) = kb.ok_or(IngestError::NoKnowledgeBase(doc.kb_id))?;
            which = EmbeddingModel::from_name(&kb_model).ok_or_else(|| EmbedError::NotLoaded(kb_model.clone()))?;
            model = self.embedder.models().get(which)?.clone();
            let lang = doc.language.clone().unwrap_or(kb_lang);
            if !known_language(&mut tx, &lang).await? {
                return Err(IngestError::Language(lang));
            }
            tx.rollback().await?;
            lang
        };
        let format = Format::detect(doc.media_type.as_deref(), doc.file_name.as_deref(), &doc.bytes)?;
        let bytes = std::sync::Arc::new(doc.bytes);
        let text = {
            let b = bytes.clone();
            tokio::task::spawn_blocking(move || extract(format, &b)).await.map_err(|e| EmbedError::Run(e.to_string()))??
        };
        let window = model.max_tokens();
        let settings = ChunkSettings { max_tokens: self.settings.chunk_tokens.min(window), overlap_tokens: self.settings.chunk_overlap_tokens.min(window / 4) };
        let chunks = {
            let model = model.clone();
            tokio::task::spawn_blocking(move || chunk(&text, model.as_ref(), settings)).await.map_err(|e| EmbedError::Run(e.to_string()))?
        };
        if chunks.is_empty() {
            return Err(ExtractError::Empty.into());
        }
        if chunks.len() > self.settings.max_chunks_per_document {
            return Err(IngestError::TooManyChunks { chunks: chunks.len(), limit: self.settings.max_chunks_per_document });
        }
        // The heading travels with the chunk into its embedding.
        let inputs: Vec<String> = chunks
            .iter()
            .map(|c| match &c.heading {
                Some(h) if !c.text.trim_start().trim_start_matches('#').trim_start().starts_with(h.as_str()) => {
                    format!("{h}\n{}", c.text)
                }
                _ => c.text.clone(),
            })
            .collect();
        let (vectors, stats) = self.embedder.embed(tenant, which, Role::Passage, &inputs).await?;

        let id = Uuid::new_v4();
        let key = self.db.data_key(self.keyring, tenant).await?;
        let object_key = tenant_key(tenant, "documents", &id.to_string());
        let sealed = key.seal(object_key.as_bytes(), &bytes);
        self.objects.put(&object_key, sealed, "application/octet-stream").await?;

        let written = self.write(tenant, id, doc.kb_id, &doc.title, format, &language, doc.source_url.as_deref(), &bytes, &object_key, &chunks, &vectors, &key).await;
        if let Err(e) = written {
            if let Err(del) = self.objects.delete(&object_key).await {
                tracing::warn!(error = %del, object = %object_key, "could not remove the object of a failed ingest");
            }
            return Err(e);
        }
        Ok(Ingested {
            id,
            kb_id: doc.kb_id,
            title: doc.title,
            media_type: format.media_type(),
            language,
            bytes: bytes.len(),
            chunks: chunks.len(),
            tokens: chunks.iter().map(|c| c.tokens).sum(),
            embeddings_cached: stats.hits,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        tenant: &str,
        id: Uuid,
        kb_id: Uuid,
        title: &str,
        format: Format,
        language: &str,
        source_url: Option<&str>,
        bytes: &[u8],
        object_key: &str,
        chunks: &[super::chunk::Chunk],
        vectors: &[Vec<f32>],
        key: &crate::crypto::DataKey,
    ) -> Result<(), IngestError> {
        use sha2::Digest;
        let mut tx = self.db.tenant_tx(tenant).await?;
        let inserted = sqlx::query("INSERT INTO documents (id, tenant_id, kb_id, title, media_type, object_key, bytes, language, source_url, sha256, chunk_count) SELECT $1, $2, kb.id, $4, $5, $6, $7, $8, $9, $10, $11 FROM knowledge_bases kb WHERE kb.id = $3")
            .bind(id)
            .bind(tenant)
            .bind(kb_id)
            .bind(title)
            .bind(format.media_type())
            .bind(object_key)
            .bind(bytes.len() as i64)
            .bind(language)
            .bind(source_url)
            .bind(sha2::Sha256::digest(bytes).to_vec())
            .bind(chunks.len() as i32)
            .execute(&mut *tx)
            .await?;
        if inserted.rows_affected() == 0 {
            return Err(IngestError::NoKnowledgeBase(kb_id));
        }
        let positions: Vec<i32> = chunks.iter().map(|c| c.position as i32).collect();
        let headings: Vec<Option<String>> = chunks.iter().map(|c| c.heading.clone()).collect();
        let tokens: Vec<i32> = chunks.iter().map(|c| c.tokens as i32).collect();
        let sealed: Vec<Vec<u8>> = chunks.iter().map(|c| key.seal(chunk_context(id, c.position as i32).as_bytes(), c.text.as_bytes())).collect();
        let texts: Vec<String> = chunks
            .iter()
            .map(|c| match &c.heading {
                Some(h) => format!("{h}\n{}", c.text),
                None => c.text.clone(),
            })
            .collect();
        let embeddings: Vec<String> = vectors.iter().map(|v| vector_literal(v)).collect();
        sqlx::query(
            "INSERT INTO chunks (tenant_id, kb_id, document_id, position, heading, tokens, text_enc, tsv, embedding)
             SELECT $1, d.kb_id, d.id, u.p, u.h, u.n, u.e, to_tsvector($3::regconfig, u.t), u.v::vector
             FROM documents d, unnest($4::int[], $5::text[], $6::int[], $7::bytea[], $8::text[], $9::text[]) AS u(p, h, n, e, t, v)
             WHERE d.id = $2",
        )
        .bind(tenant)
        .bind(id)
        .bind(language)
        .bind(&positions)
        .bind(&headings)
        .bind(&tokens)
        .bind(&sealed)
        .bind(&texts)
        .bind(&embeddings)
        .execute(&mut *tx)
        .await?;
        keywords::index_document(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(())
    }
}
