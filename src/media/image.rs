//! Turns an uploaded file into a stored-safe image: the type is decided by content (not
//! the client's mime type), dimensions are checked before decoding (decompression
//! bombs), the picture is decoded fully (truncated or corrupt files fail), metadata
//! such as EXIF/GPS is dropped while the EXIF orientation is applied, and a thumbnail
//! is made.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    pub max_bytes: usize,
    pub max_dimension: u32,
    /// Width × height; bounds the memory one decode may take.
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self { max_bytes: 5 * 1024 * 1024, max_dimension: 8000, max_pixels: 40_000_000 }
    }
}

pub const THUMB_MAX: u32 = 320;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("Image is too large (limit {0} bytes)")]
    TooLarge(usize),
    #[error("Only JPEG, PNG, GIF and WebP images are allowed")]
    Unsupported,
    #[error("Image dimensions {0}x{1} exceed the limit of {2} pixels per side or {3} pixels in total")]
    TooManyPixels(u32, u32, u32, u64),
    #[error("The image is corrupt or truncated")]
    Corrupt,
}

#[derive(Debug, Clone)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub extension: &'static str,
    pub content_type: &'static str,
}

#[derive(Debug, Clone)]
pub struct ProcessedImage {
    pub image: Encoded,
    pub thumbnail: Encoded,
    pub width: u32,
    pub height: u32,
}

pub fn process(bytes: &[u8], limits: &ImageLimits) -> Result<ProcessedImage, ImageError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooLarge(limits.max_bytes));
    }
    let format = image::guess_format(bytes).map_err(|_| ImageError::Unsupported)?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP) {
        return Err(ImageError::Unsupported);
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder fills a cut-off picture with grey instead of failing.
        return Err(ImageError::Corrupt);
    }
    // The header alone, so an oversized picture is reported with its real size (the
    // limited decoder below refuses it without saying how large it was).
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format).into_dimensions().map_err(classify)?;
    if width > limits.max_dimension
        || height > limits.max_dimension
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(too_many(width, height, limits));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_dimension);
    decoder_limits.max_image_height = Some(limits.max_dimension);
    decoder_limits.max_alloc = Some(limits.max_pixels * 4 + 64 * 1024 * 1024);
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(classify)?;
    if decoder.dimensions() != (width, height) {
        return Err(ImageError::Corrupt);
    }
    let orientation = decoder.orientation().ok();
    let mut picture = DynamicImage::from_decoder(decoder).map_err(classify)?;
    if let Some(orientation) = orientation {
        picture.apply_orientation(orientation);
    }
    let image = match format {
        // Re-encoding writes pixels only: EXIF, GPS, comments and ICC text are gone.
        ImageFormat::Jpeg => encode_jpeg(&picture, 88)?,
        ImageFormat::Png => encode_png(&picture)?,
        // Kept as sent so animations survive; GIF has no EXIF, and its comment and
        // application blocks are dropped by re-muxing in a later version if needed.
        ImageFormat::Gif => Encoded { bytes: bytes.to_vec(), extension: "gif", content_type: "image/gif" },
        // Re-encoding would turn lossy WebP into much larger lossless WebP, so the
        // metadata chunks are cut out of the container instead.
        _ => Encoded {
            bytes: strip_webp_metadata(bytes).ok_or(ImageError::Corrupt)?,
            extension: "webp",
            content_type: "image/webp",
        },
    };
    let thumb = picture.thumbnail(THUMB_MAX, THUMB_MAX);
    let thumbnail = if thumb.color().has_alpha() { encode_png(&thumb)? } else { encode_jpeg(&thumb, 80)? };
    Ok(ProcessedImage { image, thumbnail, width: picture.width(), height: picture.height() })
}

fn too_many(width: u32, height: u32, limits: &ImageLimits) -> ImageError {
    ImageError::TooManyPixels(width, height, limits.max_dimension, limits.max_pixels)
}

/// A decoder error as the client is told it. Oversized pictures are caught from the
/// header before decoding; a limit hit later (an allocation) is reported as corrupt.
fn classify(error: image::ImageError) -> ImageError {
    match error {
        image::ImageError::Unsupported(_) => ImageError::Unsupported,
        _ => ImageError::Corrupt,
    }
}

/// Whether a JPEG's marker structure runs whole from SOI to EOI: every segment's length
/// fits, and the entropy-coded data after each SOS ends at a marker. A file cut short
/// anywhere loses its EOI.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut at = 2;
    loop {
        // Markers may be preceded by fill bytes (0xFF).
        while at < bytes.len() && bytes[at] == 0xFF && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
            return false;
        };
        at += 2;
        match marker {
            0xD9 => return true,
            // Standalone markers: no length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = bytes.get(at..at + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
            return false;
        };
        if len < 2 || at + len > bytes.len() {
            return false;
        }
        at += len;
        if marker == 0xDA {
            // Entropy-coded data: runs to the next marker that is not a stuffed 0xFF00
            // or a restart marker.
            loop {
                match bytes.get(at..at + 2) {
                    None => return false,
                    Some([0xFF, 0x00]) | Some([0xFF, 0xD0..=0xD7]) => at += 2,
                    Some([0xFF, _]) => break,
                    Some(_) => at += 1,
                }
            }
        }
    }
}

fn encode_jpeg(picture: &DynamicImage, quality: u8) -> Result<Encoded, ImageError> {
    let mut out = Vec::new();
    let rgb = picture.to_rgb8();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&rgb)
        .map_err(|_| ImageError::Corrupt)?;
    Ok(Encoded { bytes: out, extension: "jpg", content_type: "image/jpeg" })
}

fn encode_png(picture: &DynamicImage) -> Result<Encoded, ImageError> {
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, ImageFormat::Png).map_err(|_| ImageError::Corrupt)?;
    Ok(Encoded { bytes: out.into_inner(), extension: "png", content_type: "image/png" })
}

/// Removes the `EXIF` and `XMP ` chunks of a WebP (RIFF) file and clears their flags in
/// the `VP8X` header. `None` if the container is malformed.
pub fn strip_webp_metadata(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[0..12]);
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let fourcc = &bytes[at..at + 4];
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        let data_end = at.checked_add(8)?.checked_add(size)?;
        if data_end > bytes.len() {
            return None;
        }
        // Chunks are padded to an even size; some writers omit the pad at the very end.
        let end = (data_end + (size & 1)).min(bytes.len());
        let chunk = &bytes[at..end];
        match fourcc {
            b"EXIF" | b"XMP " => {}
            b"VP8X" if chunk.len() > 8 => {
                let mut header = chunk.to_vec();
                // Flags byte: bit 3 EXIF, bit 2 XMP.
                header[8] &= !0b0000_1100;
                out.extend_from_slice(&header);
            }
            _ => out.extend_from_slice(chunk),
        }
        at = end;
    }
    if at != bytes.len() {
        return None;
    }
    let riff_size = u32::try_from(out.len() - 8).ok()?;
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg() -> Vec<u8> {
        let picture = DynamicImage::ImageRgb8(image::RgbImage::from_fn(120, 80, |x, y| {
            image::Rgb([(x * 2) as u8, (y * 3) as u8, (x ^ y) as u8])
        }));
        encode_jpeg(&picture, 90).unwrap().bytes
    }

    #[test]
    fn a_jpeg_is_complete_only_up_to_its_end_marker() {
        let whole = jpeg();
        assert!(jpeg_is_complete(&whole));
        let mut trailer = whole.clone();
        trailer.extend_from_slice(b"some cameras append data after EOI");
        assert!(jpeg_is_complete(&trailer), "bytes after EOI are allowed");
        for cut in [4, whole.len() / 3, whole.len() / 2, whole.len() - 10, whole.len() - 2, whole.len() - 1] {
            assert!(!jpeg_is_complete(&whole[..cut]), "cut at {cut} of {}", whole.len());
        }
        assert!(!jpeg_is_complete(b"\xFF\xD8"), "SOI alone");
    }

    #[test]
    fn oversized_pictures_are_reported_with_their_real_size() {
        let picture = DynamicImage::ImageRgb8(image::RgbImage::new(300, 20));
        let png = encode_png(&picture).unwrap().bytes;
        let limits = ImageLimits { max_dimension: 100, ..ImageLimits::default() };
        let err = process(&png, &limits).unwrap_err();
        assert_eq!(err, ImageError::TooManyPixels(300, 20, 100, limits.max_pixels));
    }
}
