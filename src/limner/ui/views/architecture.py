"""How the pipelines work, in short text and diagrams (diffusion, img2img, inpainting, edits, IP-Adapter, LoRA)."""

from __future__ import annotations

import streamlit as st

from limner.ui import diagrams


def main() -> None:
    st.title("How limner makes pictures")
    st.write(
        "Every task in limner runs on one family of models, **latent diffusion**. The same loaded weights serve "
        "text-to-image, image-to-image and inpainting (diffusers' `from_pipe` shares them), so switching task "
        "loads nothing."
    )

    st.header("Diffusion: from noise to a picture")
    st.image(
        diagrams.noise_strip(), caption="The forward process: a picture drowned in more and more noise (t = 0 ... 1)"
    )
    st.write(
        "A diffusion model is trained to undo the strip above, one small step at a time. Generation starts at the "
        "right end, with pure noise drawn from the **seed** (same seed, same settings: same picture). At each of "
        "the **steps**, the network predicts the noise in the current latent and the **scheduler** (Euler, DPM++ "
        "...) removes some of it. The prompt steers each prediction through cross-attention; **guidance** (CFG) "
        "compares the prediction with and without the prompt and pushes further in that direction. The work happens "
        "in a small latent space; a VAE decodes the final latent into pixels."
    )
    st.graphviz_chart(diagrams.TXT2IMG)

    left, right = st.columns(2)
    with left:
        st.subheader("Image-to-image")
        st.write(
            "Your picture is encoded to a latent and noised part of the way; the model denoises from there. "
            "**Strength** says how far: 0.3 keeps the composition, 0.9 keeps little more than the colours."
        )
        st.graphviz_chart(diagrams.IMG2IMG)
    with right:
        st.subheader("Inpainting")
        st.write(
            "A mask says where to repaint (white) and what to keep (black). Inpainting models see the masked "
            "picture and the mask as extra input channels, so the new part fits its surroundings."
        )
        st.graphviz_chart(diagrams.INPAINT)

    left, right = st.columns(2)
    with left:
        st.subheader("Instruction edits (InstructPix2Pix)")
        st.write(
            "Trained on (photo, instruction, edited photo) triples, the model takes the photo itself as a condition "
            'and follows an instruction such as "Cartoonize the following image". **Image guidance** says how '
            "closely the result keeps to the photo; text guidance how strongly it follows the instruction."
        )
        st.graphviz_chart(diagrams.PIX2PIX)
    with right:
        st.subheader("Characters (IP-Adapter)")
        st.write(
            "An image encoder turns a reference picture into embeddings; small adapter layers add image keys and "
            "values beside the text ones in every cross-attention. The **scale** sets how strongly the reference "
            "binds, so one picture of a character can appear in new scenes and styles."
        )
        st.graphviz_chart(diagrams.IP_ADAPTER)

    st.subheader("LoRA: small add-ons for big models")
    st.write(
        "Fine-tuning every weight of a model is expensive. LoRA freezes the weights and learns, for some layers, a "
        "low-rank update `B·A` (rank r of 4 to 64). The file is small (megabytes), several LoRAs can be combined, "
        "and the **weight** scales each one at generation time. DreamBooth training in limner produces such a LoRA "
        "for your subject."
    )
    st.graphviz_chart(diagrams.LORA)


if __name__ == "__main__":
    main()
