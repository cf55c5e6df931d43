//! Image uploads: validation off the async runtime with bounded parallelism, storage,
//! and clean-up when a message cannot be stored after its image was.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{ServiceError, ServiceResult};
use crate::domain::Image;
use crate::media::image::{process, ImageError, ImageLimits, ProcessedImage};
use crate::ports::MediaStore;

pub struct MediaService {
    store: Arc<dyn MediaStore>,
    limits: ImageLimits,
    /// Decoding takes CPU and up to ~4 bytes a pixel; at most this many at once.
    decoders: Semaphore,
}

impl MediaService {
    pub fn new(store: Arc<dyn MediaStore>, limits: ImageLimits) -> Self {
        let parallel = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self { store, limits, decoders: Semaphore::new(parallel) }
    }

    pub fn limits(&self) -> &ImageLimits {
        &self.limits
    }

    pub fn store(&self) -> &Arc<dyn MediaStore> {
        &self.store
    }

    pub async fn prepare(&self, bytes: Vec<u8>) -> ServiceResult<ProcessedImage> {
        if bytes.len() > self.limits.max_bytes {
            return Err(ServiceError::TooLarge(ImageError::TooLarge(self.limits.max_bytes).to_string()));
        }
        let _permit = self.decoders.acquire().await.map_err(|e| ServiceError::Unavailable(e.into()))?;
        let limits = self.limits;
        let processed = tokio::task::spawn_blocking(move || process(&bytes, &limits))
            .await
            .map_err(|e| ServiceError::Unavailable(e.into()))?;
        processed.map_err(|e| match e {
            ImageError::TooLarge(_) => ServiceError::TooLarge(e.to_string()),
            other => ServiceError::BadRequest(other.to_string()),
        })
    }

    pub async fn keep(&self, image: &ProcessedImage) -> ServiceResult<Image> {
        Ok(self.store.put(image).await?)
    }

    /// Best effort: a failure is logged, since the caller is already reporting an error.
    pub async fn discard(&self, image: &Image) {
        if let Err(e) = self.store.delete(&image.public_id).await {
            tracing::warn!(public_id = %image.public_id, error = %format!("{e:#}"), "could not remove an orphaned image");
        }
    }
}
