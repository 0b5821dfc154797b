"""Avatar images: whatever arrives is decoded by Pillow (the magic bytes decide, never the
Content-Type), bounded in bytes and pixels, cropped to a square, scaled down and re-encoded.

Re-encoding from pixels drops everything but the picture (EXIF with GPS positions, ICC
profiles, comments, trailing data), and a decompression bomb is refused from its header,
before any pixel is decoded.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 25_000_000  # a 5000 x 5000 photo; more is a bomb or not an avatar
MAX_SIDE = 256
FORMATS = ("JPEG", "PNG", "GIF", "WEBP")


class AvatarError(ValueError):
    """Why an upload is refused: an UPPER_SNAKE code and the HTTP status it deserves."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Avatar:
    data: bytes
    content_type: str
    width: int
    height: int
    etag: str


def process(data: bytes) -> Avatar:
    """The stored form of an uploaded image (blocking: run it in a thread)."""
    if not data:
        raise AvatarError("EMPTY_FILE", "the file is empty")
    if len(data) > MAX_BYTES:
        raise AvatarError("FILE_TOO_LARGE", f"the image must be at most {MAX_BYTES // (1024 * 1024)} MiB", 413)
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice that; make every bomb an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=FORMATS) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise AvatarError("TOO_MANY_PIXELS", f"the image has more than {MAX_PIXELS} pixels")
                img.seek(0)  # first frame of an animation
                img.load()
                picture = ImageOps.exif_transpose(img)
        except AvatarError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise AvatarError("TOO_MANY_PIXELS", f"the image has more than {MAX_PIXELS} pixels") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
            raise AvatarError("NOT_AN_IMAGE", "the file is not a JPEG, PNG, GIF or WebP image") from None
    side = min(picture.width, picture.height, MAX_SIDE)
    has_alpha = picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info)
    picture = picture.convert("RGBA" if has_alpha else "RGB")
    square = ImageOps.fit(picture, (side, side), method=Image.Resampling.LANCZOS)
    # Resizing copies `info` (EXIF, ICC, comments) and some encoders fall back to it: drop it
    # all, and pass no exif=, icc_profile= or pnginfo= to save.
    square.info.clear()
    out = io.BytesIO()
    if has_alpha:
        square.save(out, format="PNG", optimize=True)
        content_type = "image/png"
    else:
        square.save(out, format="JPEG", quality=85, optimize=True)
        content_type = "image/jpeg"
    encoded = out.getvalue()
    return Avatar(encoded, content_type, side, side, hashlib.sha256(encoded).hexdigest()[:32])
