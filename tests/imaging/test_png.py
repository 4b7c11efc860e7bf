"""Output PNGs: both metadata chunks, generated names, no overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from limner.core.errors import InvalidRequestError
from limner.core.metadata import parse_a1111_parameters, scheduler_from_a1111, to_a1111_parameters
from limner.core.records import GeneratedImage, ImageRecord
from limner.core.requests import GenerationRequest, SchedulerName
from limner.imaging.png import read_parameters, save_png


def item(seed: int = 7) -> GeneratedImage:
    request = GenerationRequest(prompt="../../etc/passwd a fox", seed=seed)
    record = ImageRecord(request=request, seed=seed, width=8, height=8, model_name="m", limner_version="1")
    return GeneratedImage(image=Image.new("RGB", (8, 8), "red"), record=record)


def zlib_level_class(data: bytes) -> int:
    """The FLEVEL field of a PNG's first IDAT chunk (zlib's header): 0 fastest (levels 0-1), 1 fast (2-5),
    2 default (6), 3 best (7-9)."""
    offset = 8  # past the signature
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        if data[offset + 4 : offset + 8] == b"IDAT":
            return data[offset + 9] >> 6
        offset += 12 + length
    raise AssertionError("no IDAT chunk")


@pytest.mark.parametrize(("level", "flevel"), [(1, 0), (6, 2), (9, 3)])
def test_the_png_is_compressed_at_the_callers_level(tmp_path: Path, level: int, flevel: int) -> None:
    """Before, every PNG took Pillow's default level 6: on photo-like pictures 3-4x the encode time of
    level 1, between the pipeline and the answer of every job."""
    picture = Image.effect_noise((32, 32), 40).convert("RGB")
    path = save_png(GeneratedImage(image=picture, record=item().record), tmp_path, compress_level=level)
    assert zlib_level_class(path.read_bytes()) == flevel
    with Image.open(path) as back:
        assert back.tobytes() == picture.tobytes()  # lossless at every level


def test_save_and_read_back(tmp_path: Path) -> None:
    path = save_png(item(), tmp_path / "out", compress_level=1)
    assert path.name == "00001-7.png"
    assert path.parent == tmp_path / "out"
    record, a1111 = read_parameters(path)
    assert record == item().record
    assert a1111 is not None
    assert a1111["Seed"] == "7"
    assert a1111["Prompt"] == "../../etc/passwd a fox"


def test_names_count_up_and_never_overwrite(tmp_path: Path) -> None:
    (tmp_path / "00003-1.png").write_bytes(b"keep me")
    first = save_png(item(1), tmp_path, compress_level=1)
    second = save_png(item(1), tmp_path, compress_level=1)
    assert (first.name, second.name) == ("00004-1.png", "00005-1.png")
    assert (tmp_path / "00003-1.png").read_bytes() == b"keep me"


def test_plain_png_has_no_parameters(tmp_path: Path) -> None:
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    assert read_parameters(plain) == (None, None)


def test_non_image_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.png"
    bogus.write_text("hello", encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="cannot read"):
        read_parameters(bogus)


A1111_NAMES = {
    SchedulerName.EULER: "Euler",
    SchedulerName.EULER_A: "Euler a",
    SchedulerName.DPMPP_2M: "DPM++ 2M",
    SchedulerName.DPMPP_2M_KARRAS: "DPM++ 2M Karras",
    SchedulerName.DDIM: "DDIM",
    SchedulerName.LCM: "LCM",
    SchedulerName.UNIPC: "UniPC",
    SchedulerName.HEUN: "Heun",
    SchedulerName.PNDM: "PLMS",
}


@pytest.mark.parametrize(("scheduler", "a1111_name"), list(A1111_NAMES.items()))
def test_samplers_are_written_with_a1111_names_and_read_back(
    tmp_path: Path, scheduler: SchedulerName, a1111_name: str
) -> None:
    request = GenerationRequest(prompt="a fox", seed=1, scheduler=scheduler)
    record = ImageRecord(request=request, seed=1, width=8, height=8, model_name="m", limner_version="1",
                         scheduler="DPMSolverMultistepScheduler")  # fmt: skip
    path = save_png(GeneratedImage(image=Image.new("RGB", (8, 8)), record=record), tmp_path, compress_level=1)
    _, a1111 = read_parameters(path)
    assert a1111 is not None
    assert a1111["Sampler"] == a1111_name
    assert a1111["scheduler"] == scheduler.value


@pytest.mark.parametrize(
    ("diffusers_class", "a1111_name"),
    [("EulerDiscreteScheduler", "Euler"), ("EulerAncestralDiscreteScheduler", "Euler a"),
     ("DPMSolverMultistepScheduler", "DPM++ 2M"), ("PNDMScheduler", "PLMS"), ("LCMScheduler", "LCM"),
     ("SomeNewScheduler", "SomeNewScheduler")],
)  # fmt: skip
def test_the_models_own_scheduler_is_named_the_a1111_way(diffusers_class: str, a1111_name: str) -> None:
    record = ImageRecord(request=GenerationRequest(prompt="a fox", seed=1), seed=1, width=8, height=8,
                         model_name="m", limner_version="1", scheduler=diffusers_class)  # fmt: skip
    assert f"Sampler: {a1111_name}," in to_a1111_parameters(record)


@pytest.mark.parametrize(
    ("settings_line", "expected"),
    [("Sampler: DPM++ 2M Karras", SchedulerName.DPMPP_2M_KARRAS),
     ("Sampler: DPM++ 2M, Schedule type: Karras", SchedulerName.DPMPP_2M_KARRAS),
     ("Sampler: DPM++ 2M, Schedule type: Automatic", SchedulerName.DPMPP_2M),
     ("Sampler: Euler a", SchedulerName.EULER_A),
     ("Sampler: PLMS", SchedulerName.PNDM),
     ("Sampler: DPM++ 3M SDE", None)],
)  # fmt: skip
def test_a1111_text_from_other_tools_reads_back_to_limners_sampler(
    settings_line: str, expected: SchedulerName | None
) -> None:
    parsed = parse_a1111_parameters(f"a castle\nNegative prompt: blurry\nSteps: 20, {settings_line}, Seed: 3")
    assert parsed.get("scheduler") == (expected.value if expected else None)
    assert scheduler_from_a1111(parsed["Sampler"], parsed.get("Schedule type", "")) == expected
