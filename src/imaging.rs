//! Image resizing for every room that scales a frame (the detector's input, the snapshot):
//! one filter everywhere, so what is drawn matches what the detector saw.

/// Bilinear convolution resize (smooths when shrinking), matching Pillow's BILINEAR.
pub fn resize_rgb(rgb: &[u8], w: u32, h: u32, size: u32) -> Result<Vec<u8>, String> {
    resize_rgb_to(rgb, w, h, size, size)
}

/// [`resize_rgb`] to any output size.
pub fn resize_rgb_to(
    rgb: &[u8],
    w: u32,
    h: u32,
    out_w: u32,
    out_h: u32,
) -> Result<Vec<u8>, String> {
    use fast_image_resize::{
        images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions,
    };
    let src = ImageRef::new(w, h, rgb, PixelType::U8x3).map_err(|e| e.to_string())?;
    let mut dst = Image::new(out_w, out_h, PixelType::U8x3);
    fast_image_resize::Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .map_err(|e| e.to_string())?;
    Ok(dst.into_vec())
}
