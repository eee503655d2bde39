//! Real, valid, small media files: a PNG of one colour (from the prompt) at the requested
//! size, silent MPEG-1 Layer III frames, 16-bit PCM WAV, and an MP4 holding an H.264
//! video track (lossless I_PCM frames from `less-avc`, muxed by `mp4`).

use std::io::Cursor;

use less_avc::ycbcr_image::{DataPlane, Planes, YCbCrImage};
use less_avc::BitDepth;

/// A colour from a text, so different prompts give different images.
fn colour(seed: &str) -> [u8; 3] {
    let h = seed.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    [(h >> 16) as u8, (h >> 8) as u8, h as u8]
}

pub fn png(width: u32, height: u32, seed: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().expect("png header");
    let px = colour(seed);
    let data: Vec<u8> = (0..width * height).flat_map(|_| px).collect();
    w.write_image_data(&data).expect("png data");
    w.finish().expect("png end");
    out
}

/// MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono: 417-byte frames of 1152 samples whose
/// side information is all zero (silence).
pub fn mp3(seconds: f32) -> Vec<u8> {
    let frames = ((seconds * 44_100.0 / 1152.0).ceil() as usize).max(1);
    let mut frame = vec![0u8; 417];
    frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0xC4]);
    frame.repeat(frames)
}

/// 16-bit mono PCM at `rate`: a quiet 440 Hz tone.
pub fn wav(seconds: f32, rate: u32) -> Vec<u8> {
    let pcm: Vec<u8> = (0..(seconds * rate as f32) as u32).flat_map(|i| (((i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 2000.0) as i16).to_le_bytes()).collect();
    let mut out = Vec::with_capacity(44 + pcm.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
    out.extend_from_slice(&pcm);
    out
}

/// Raw PCM (what ElevenLabs sends for `pcm_*` output formats).
pub fn pcm(seconds: f32, rate: u32) -> Vec<u8> {
    wav(seconds, rate)[44..].to_vec()
}

/// An MP4 of `seconds` one-second frames, 64×64, in one colour from `seed`.
pub fn mp4(seconds: u32, seed: &str) -> Vec<u8> {
    let (w, h) = (64u32, 64u32);
    let [r, g, b] = colour(seed);
    let y = (0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32) as u8;
    let cb = (128.0 - 0.168_736 * r as f32 - 0.331_264 * g as f32 + 0.5 * b as f32) as u8;
    let cr = (128.0 + 0.5 * r as f32 - 0.418_688 * g as f32 - 0.081_312 * b as f32) as u8;
    let (luma, chroma_b, chroma_r) = (vec![y; (w * h) as usize], vec![cb; (w * h / 4) as usize], vec![cr; (w * h / 4) as usize]);
    let plane = |data, stride: u32| DataPlane { data, stride: stride as usize, bit_depth: BitDepth::Depth8 };
    let image = YCbCrImage { planes: Planes::YCbCr((plane(&luma[..], w), plane(&chroma_b[..], w / 2), plane(&chroma_r[..], w / 2))), width: w, height: h };
    let (initial, mut encoder) = less_avc::LessEncoder::new(&image).expect("H.264 encoder");
    let avcc = |nal: &[u8]| -> Vec<u8> { [(nal.len() as u32).to_be_bytes().as_slice(), nal].concat() };

    let config =
        mp4::Mp4Config { major_brand: "isom".parse().expect("fourcc"), minor_version: 512, compatible_brands: vec!["isom".parse().expect("fourcc"), "avc1".parse().expect("fourcc")], timescale: 1000 };
    let mut writer = mp4::Mp4Writer::write_start(Cursor::new(Vec::new()), &config).expect("mp4 start");
    let avc = mp4::AvcConfig { width: w as u16, height: h as u16, seq_param_set: initial.sps.to_nal_unit(), pic_param_set: initial.pps.to_nal_unit() };
    writer.add_track(&mp4::TrackConfig { track_type: mp4::TrackType::Video, timescale: 1000, language: "und".into(), media_conf: mp4::MediaConfig::AvcConfig(avc) }).expect("mp4 track");
    let mut frame = initial.frame.to_nal_unit();
    for i in 0..seconds.max(1) {
        if i > 0 {
            frame = encoder.encode(&image).expect("H.264 frame").to_nal_unit();
        }
        let sample = mp4::Mp4Sample { start_time: u64::from(i) * 1000, duration: 1000, rendering_offset: 0, is_sync: true, bytes: avcc(&frame).into() };
        writer.write_sample(1, &sample).expect("mp4 sample");
    }
    writer.write_end().expect("mp4 end");
    writer.into_writer().into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_is_what_it_claims() {
        let p = png(32, 16, "otter");
        let decoder = png::Decoder::new(p.as_slice());
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (32, 16));
        let m = mp3(1.0);
        assert_eq!(m.len() % 417, 0);
        assert!(m.chunks(417).all(|f| f[..2] == [0xFF, 0xFB]), "every frame starts with a frame sync");
        let w = wav(0.5, 8000);
        assert_eq!((&w[..4], &w[8..12], w.len()), (b"RIFF".as_slice(), b"WAVE".as_slice(), 44 + 8000));
        let v = mp4(3, "waves");
        let size = v.len() as u64;
        let r = mp4::Mp4Reader::read_header(Cursor::new(v), size).unwrap();
        let track = r.tracks().values().next().unwrap();
        assert_eq!((track.media_type().unwrap(), track.width(), track.height(), track.sample_count()), (mp4::MediaType::H264, 64, 64, 3));
        assert_eq!(r.duration().as_secs(), 3);
    }
}
