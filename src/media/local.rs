//! The embedded media store: files under `data_dir/media`, served at `/media/`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use async_trait::async_trait;

use super::image::{Encoded, ProcessedImage};
use crate::domain::{Image, ObjectId};
use crate::ports::{BackendResult, MediaStore};

/// Cloudinary's folder name, kept so `publicId`s look the same on both stores.
pub const FOLDER: &str = "chat-images";

pub struct LocalMedia {
    root: PathBuf,
    /// What stored URLs start with: `public_url` when configured, else nothing, so they
    /// are root-relative (`/media/…`) and load from whichever origin serves the page.
    /// Never taken from a request: a `Host` header would end up in every recipient's
    /// copy of the message.
    url_prefix: String,
}

impl LocalMedia {
    pub fn open(root: &Path, public_url: Option<&str>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root.join(FOLDER)).with_context(|| format!("creating {}", root.display()))?;
        let url_prefix = public_url.unwrap_or_default().trim_end_matches('/').to_string();
        Ok(Self { root: root.to_path_buf(), url_prefix })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    async fn write(&self, name: &str, file: &Encoded) -> BackendResult<()> {
        let path = self.root.join(FOLDER).join(name);
        // Write then rename, so a reader never sees half a file.
        let partial = path.with_extension("partial");
        tokio::fs::write(&partial, &file.bytes).await.with_context(|| format!("writing {}", partial.display()))?;
        tokio::fs::rename(&partial, &path).await.with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }
}

#[async_trait]
impl MediaStore for LocalMedia {
    async fn put(&self, image: &ProcessedImage) -> BackendResult<Image> {
        let id = ObjectId::new();
        let name = format!("{id}.{}", image.image.extension);
        let thumb = format!("{id}_thumb.{}", image.thumbnail.extension);
        self.write(&name, &image.image).await?;
        if let Err(e) = self.write(&thumb, &image.thumbnail).await {
            let _ = tokio::fs::remove_file(self.root.join(FOLDER).join(&name)).await;
            return Err(e);
        }
        let base = &self.url_prefix;
        Ok(Image {
            url: format!("{base}/media/{FOLDER}/{name}"),
            public_id: format!("{FOLDER}/{id}"),
            thumb_url: Some(format!("{base}/media/{FOLDER}/{thumb}")),
        })
    }

    async fn delete(&self, public_id: &str) -> BackendResult<()> {
        let Some(id) = public_id.strip_prefix(&format!("{FOLDER}/")).and_then(|id| ObjectId::parse(id).ok()) else {
            anyhow::bail!("not a local media id: {public_id}");
        };
        // The names are known (`<id>.<ext>`, `<id>_thumb.<ext>`), so no directory scan:
        // that would grow with every image ever stored.
        for ext in ["jpg", "png", "gif", "webp"] {
            for name in [format!("{id}.{ext}"), format!("{id}_thumb.{ext}")] {
                match tokio::fs::remove_file(self.root.join(FOLDER).join(name)).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("local ({})", self.root.display())
    }

    async fn ping(&self) -> BackendResult<()> {
        let meta = tokio::fs::metadata(self.root.join(FOLDER)).await.context("media directory")?;
        anyhow::ensure!(meta.is_dir(), "media path is not a directory");
        Ok(())
    }
}
