"""Pictures for the Architecture page, made here: Graphviz DOT text and a noise strip.

Why generated: the studio must work offline and on a fresh machine, so it ships no image files
and loads nothing from the network; Streamlit draws DOT in the browser, and the noise strip is a
few lines of numpy.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

_STYLE = (
    'graph [bgcolor="transparent", fontname="Helvetica", nodesep=0.3, ranksep=0.35];'
    'node [shape=box, style="rounded,filled", fillcolor="#eef2ff", color="#6366f1", fontname="Helvetica", '
    "fontsize=11];"
    'edge [color="#64748b", fontname="Helvetica", fontsize=9];'
)


def _graph(body: str, direction: str = "LR") -> str:
    """A DOT digraph in the house style; ``TB`` for long chains drawn in a half-width column."""
    return "digraph {" + f"graph [rankdir={direction}];" + _STYLE + body + "}"


TXT2IMG = _graph(
    'prompt [label="prompt", shape=note, fillcolor="#fef9c3"];'
    'te [label="text encoder\\n(CLIP)"];'
    'noise [label="random latent\\n(seeded noise)", shape=box3d, fillcolor="#e2e8f0"];'
    'unet [label="UNet / transformer\\npredicts the noise", fillcolor="#dcfce7", color="#16a34a"];'
    'sched [label="scheduler\\nremoves a bit of it"];'
    'vae [label="VAE decoder\\nlatent -> pixels"];'
    'img [label="image", shape=note, fillcolor="#fee2e2"];'
    "prompt -> te -> unet;"
    "noise -> unet -> sched;"
    'sched -> unet [label="repeat for\\nN steps", style=dashed];'
    "sched -> vae -> img;"
)

IMG2IMG = _graph(
    'img [label="your picture", shape=note, fillcolor="#fee2e2"];'
    'enc [label="VAE encoder"];'
    'noisy [label="add noise\\n(strength)", fillcolor="#e2e8f0"];'
    'loop [label="denoise the last\\nstrength x N steps", fillcolor="#dcfce7", color="#16a34a"];'
    'prompt [label="prompt", shape=note, fillcolor="#fef9c3"];'
    'out [label="new picture", shape=note, fillcolor="#fee2e2"];'
    "img -> enc -> noisy -> loop -> out; prompt -> loop;",
    direction="TB",
)

INPAINT = _graph(
    'img [label="picture", shape=note, fillcolor="#fee2e2"];'
    'mask [label="mask\\nwhite = repaint", shape=note, fillcolor="#f1f5f9"];'
    'unet [label="inpainting UNet\\n(9 input channels:\\nlatent + mask + masked picture)", '
    'fillcolor="#dcfce7", color="#16a34a"];'
    'prompt [label="prompt", shape=note, fillcolor="#fef9c3"];'
    'out [label="picture with the\\nmasked area redrawn", shape=note, fillcolor="#fee2e2"];'
    "img -> unet; mask -> unet; prompt -> unet; unet -> out;"
)

PIX2PIX = _graph(
    'img [label="photo", shape=note, fillcolor="#fee2e2"];'
    'instr [label="instruction\\n\\"cartoonize it\\"", shape=note, fillcolor="#fef9c3"];'
    'unet [label="InstructPix2Pix UNet\\n(conditioned on the photo\\nand the instruction)", '
    'fillcolor="#dcfce7", color="#16a34a"];'
    'cfg [label="two guidance scales:\\ntext and image"];'
    'out [label="edited photo", shape=note, fillcolor="#fee2e2"];'
    "img -> unet; instr -> unet; cfg -> unet [style=dashed]; unet -> out;"
)

IP_ADAPTER = _graph(
    'ref [label="reference picture\\n(a character)", shape=note, fillcolor="#fee2e2"];'
    'ienc [label="image encoder\\n(CLIP vision)"];'
    'proj [label="IP-Adapter\\nprojection"];'
    'prompt [label="prompt + style", shape=note, fillcolor="#fef9c3"];'
    'tenc [label="text encoder"];'
    'attn [label="decoupled cross-attention\\ntext keys/values + image keys/values\\n(x scale)", '
    'fillcolor="#dcfce7", color="#16a34a"];'
    'out [label="same character,\\nnew scene", shape=note, fillcolor="#fee2e2"];'
    "ref -> ienc -> proj -> attn; prompt -> tenc -> attn; attn -> out;",
    direction="TB",
)

LORA = _graph(
    'x [label="input", shape=plaintext, fillcolor="transparent"];'
    'w [label="frozen weight W\\n(d x d)", fillcolor="#e2e8f0"];'
    'a [label="A (d x r)", fillcolor="#dcfce7", color="#16a34a"];'
    'b [label="B (r x d)", fillcolor="#dcfce7", color="#16a34a"];'
    'sum [label="+", shape=circle, fillcolor="#fef9c3"];'
    'y [label="output = Wx + weight x BAx", shape=plaintext, fillcolor="transparent"];'
    "x -> w -> sum; x -> a -> b -> sum; sum -> y;"
)

DIAGRAMS: dict[str, str] = {
    "txt2img": TXT2IMG,
    "img2img": IMG2IMG,
    "inpaint": INPAINT,
    "pix2pix": PIX2PIX,
    "ip_adapter": IP_ADAPTER,
    "lora": LORA,
}


def noise_strip(levels: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0), size: int = 96, seed: int = 0) -> bytes:
    """A PNG of one small drawing at growing noise levels: the forward process diffusion learns to undo.

    Each frame is ``sqrt(1 - t) * picture + sqrt(t) * noise`` (variance-preserving mixing), the
    mixing the DDPM schedule uses, so the strip shows what the model sees at each step.
    """
    grid = np.linspace(-1.0, 1.0, size)
    x, y = np.meshgrid(grid, grid)
    picture = np.zeros((size, size, 3))
    picture[..., 0] = 0.2 + 0.6 * (y + 1) / 2  # sky to ground gradient
    picture[..., 1] = 0.45
    picture[..., 2] = 0.9 - 0.5 * (y + 1) / 2
    sun = (x - 0.35) ** 2 + (y + 0.35) ** 2 < 0.09
    picture[sun] = (1.0, 0.8, 0.2)
    hill = y > 0.25 + 0.2 * np.cos(2.5 * x)
    picture[hill] = (0.2, 0.6, 0.25)
    picture = picture * 2 - 1  # to [-1, 1] like a VAE latent or pixel range
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(picture.shape)
    frames = [np.sqrt(1 - t) * picture + np.sqrt(t) * noise for t in levels]
    gap = np.ones((size, 6, 3))
    strip = np.concatenate([part for frame in frames for part in (frame, gap)][:-1], axis=1)
    pixels = np.clip((strip + 1) / 2 * 255, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((pixels.shape[1] * 2, size * 2), Image.Resampling.NEAREST).save(buffer, "PNG")
    return buffer.getvalue()
