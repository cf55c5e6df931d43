//! Images: validation and clean-up by content (`image`), and the media stores that keep
//! them (a local directory served at `/media/`, or Cloudinary).

pub mod cloudinary;
pub mod image;
pub mod local;
