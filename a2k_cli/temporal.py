"""Temporal stability for video: the flicker-reducing filter and the flicker score.

Stylizing frames one by one flickers: tiny changes in the input (sensor noise, compression)
move the style-block matches of the attention, and the painted texture jumps where the
scene stood still. `Stabilizer` is an output-space recursive filter guided by the *input's*
own frame difference::

    O'_t = O_t + k * m_t * (O'_{t-1} - O_t)

where `m_t` is a per-pixel weight, ~1 where the blurred input luminance barely changed
(static content keeps its previous painting) and 0 where it changed (moving content is
painted afresh, so motion is never smeared). A scene cut resets the filter by itself.

`FlickerMeter` measures the result. Its *flicker score* is the mean |O_t - O_{t-1}|
(RGB in [0, 1]) over the pixels whose input barely changed (|Y_t - Y_{t-1}| < 2/255 in
luminance), divided by the same mean for the input (floored at 0.5/255, so a noiseless
input gives a finite score): 1 means the output flickers no more than the input's own
noise, higher is worse. Its *motion* figure is the same mean over
pixels whose input clearly changed (> 16/255): a stabiliser that smears motion lowers it,
so a good one lowers flicker and keeps motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

LUMA = (0.299, 0.587, 0.114)


def luminance(frames: Tensor) -> Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) Rec. 601 luma."""
    weights = torch.tensor(LUMA, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
    return (frames * weights).sum(1, keepdim=True)


def _box_blur(image: Tensor, radius: int) -> Tensor:
    size = 2 * radius + 1
    return F.avg_pool2d(image, size, stride=1, padding=radius, count_include_pad=False)


class Stabilizer:
    """Stateful per-clip filter; feed frames in order (batches are split frame by frame).

    `strength` (k) is how much of the previous output a fully static pixel keeps, so static
    texture settles over about 1 / (1 - k) frames. `threshold` is the blurred luminance
    change (in [0, 1]) at which a pixel counts as moving; the weight falls linearly to 0
    there. `radius` blurs the difference so that noise does not read as motion and the
    edges of moving objects are treated as moving too.
    """

    def __init__(self, strength: float = 0.8, threshold: float = 0.04, radius: int = 2) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError("strength must be in [0, 1)")
        self.strength = strength
        self.threshold = threshold
        self.radius = radius
        self._previous_luma: Tensor | None = None
        self._previous_output: Tensor | None = None

    def static_weight(self, luma: Tensor, previous_luma: Tensor) -> Tensor:
        """m_t: 1 where the input stood still, 0 where it moved by `threshold` or more."""
        change = _box_blur((luma - previous_luma).abs(), self.radius)
        return (1.0 - change / self.threshold).clamp_(0.0, 1.0)

    def __call__(self, content: Tensor, stylized: Tensor) -> Tensor:
        """content, stylized: (B, 3, H, W) in [0, 1], consecutive frames -> stabilised frames."""
        lumas = luminance(content)
        out = []
        for luma, frame in zip(lumas.split(1), stylized.split(1)):
            if self._previous_output is not None and self._previous_output.shape == frame.shape:
                weight = self.strength * self.static_weight(luma, self._previous_luma)
                frame = frame + weight * (self._previous_output - frame)
            self._previous_luma, self._previous_output = luma, frame
            out.append(frame)
        return torch.cat(out)


@dataclass
class FlickerMeter:
    """Accumulates the flicker score (see the module docstring) over a clip, frame by frame."""

    still: float = 2 / 255
    moving: float = 16 / 255
    _sums: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _previous: tuple[Tensor, Tensor, Tensor] | None = field(default=None, init=False, repr=False)

    def update(self, content: Tensor, output: Tensor) -> None:
        """content, output: (B, 3, H, W) in [0, 1], consecutive frames of one clip."""
        for frame, painted, luma in zip(content.split(1), output.split(1), luminance(content)):
            if self._previous is not None:
                before, painted_before, luma_before = self._previous
                luma_change = (luma - luma_before).abs()
                input_change = (frame - before).abs().mean(1)
                output_change = (painted - painted_before).abs().mean(1)
                still = luma_change < self.still
                moving = luma_change > self.moving
                self._add("still_pixels", still.sum())
                self._add("input_still", input_change[still].sum())
                self._add("output_still", output_change[still].sum())
                self._add("moving_pixels", moving.sum())
                self._add("input_moving", input_change[moving].sum())
                self._add("output_moving", output_change[moving].sum())
            self._previous = (frame, painted, luma)

    def _add(self, key: str, value: Tensor) -> None:
        self._sums[key] = self._sums.get(key, 0.0) + float(value)

    def score(self) -> dict[str, float]:
        """flicker (the score), its two means, and the motion means, all in [0, 1] units."""
        s = self._sums

        def mean(key: str, pixels: str) -> float:
            return s.get(key, 0.0) / max(s.get(pixels, 0.0), 1.0)

        input_still = mean("input_still", "still_pixels")
        output_still = mean("output_still", "still_pixels")
        return {
            "flicker": output_still / max(input_still, 0.5 / 255),
            "output_still_change": output_still,
            "input_still_change": input_still,
            "output_moving_change": mean("output_moving", "moving_pixels"),
            "input_moving_change": mean("input_moving", "moving_pixels"),
        }
