//! The local embedding models a region has loaded, by [`EmbeddingModel`]. A region loads
//! only the models its tenants use (English tenants: MiniLM; any other language:
//! multilingual E5); asking for one it has not loaded is an error, never a silent switch
//! to another vector space.

use std::path::Path;
use std::sync::Arc;

use meridian_shared::config::EmbeddingModel;

use super::e5::E5;
use super::minilm::MiniLm;
use super::{Embed, EmbedError};
use crate::rag::chunk::Tokenize;

/// A model that both embeds and splits text into its own tokens (for chunking).
pub trait LocalModel: Embed + Tokenize {}
impl<T: Embed + Tokenize> LocalModel for T {}

#[derive(Clone, Default)]
pub struct Models {
    loaded: Vec<(EmbeddingModel, Arc<dyn LocalModel>)>,
}

impl Models {
    /// Loads each of `which` from its folder under `dir` (`all-minilm-l6-v2/`,
    /// `multilingual-e5-small/`).
    pub fn load(dir: &Path, which: &[EmbeddingModel]) -> Result<Models, EmbedError> {
        let mut models = Models::default();
        for &m in which {
            if models.find(m).is_some() {
                continue;
            }
            let folder = dir.join(m.name());
            let model: Arc<dyn LocalModel> = match m {
                EmbeddingModel::AllMiniLmL6V2 => Arc::new(MiniLm::load(&folder)?),
                EmbeddingModel::MultilingualE5Small => Arc::new(E5::load(&folder)?),
            };
            models.loaded.push((m, model));
        }
        Ok(models)
    }

    /// A set holding just `model` (tests, benchmarks).
    pub fn one(which: EmbeddingModel, model: Arc<dyn LocalModel>) -> Models {
        Models { loaded: vec![(which, model)] }
    }

    fn find(&self, which: EmbeddingModel) -> Option<&Arc<dyn LocalModel>> {
        self.loaded.iter().find(|(m, _)| *m == which).map(|(_, model)| model)
    }

    pub fn get(&self, which: EmbeddingModel) -> Result<&Arc<dyn LocalModel>, EmbedError> {
        self.find(which).ok_or_else(|| EmbedError::NotLoaded(which.name().to_string()))
    }
}
