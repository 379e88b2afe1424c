"""3D drawn as 2D: world-space curves, points and arrows re-projected through an orbiting camera every frame.

Manim's ThreeDScene with Surfaces costs minutes per second of 1080p video on a CPU (measured: Sphere(24×48) + 6
Arrow3D took 1,210 s for 3 s of 1080p60 on 2 cores). Here every 3D object is a plain 2D VMobject whose points are
recomputed from numpy each frame (``shared.math.sphere.OrbitCamera``):
curves split into a bright front part and a dim back part, points shaded by depth. A frame costs a few
milliseconds of numpy plus ordinary 2D drawing.

Objects take their 3D geometry as a function, so data can move (a point cloud flattening onto a plane) while the
camera orbits: both are read each frame.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from manim import Dot, Line, ValueTracker, VGroup, VMobject

from shared import theme
from shared.math.sphere import OrbitCamera, nearness

Geometry = Callable[[], np.ndarray]

BACK_OPACITY = 0.25  # the far side of a curve, seen through the sphere


class ProjectedView(VGroup):
    """A 3D stage drawn at ``center`` with ``scale`` frame units per world unit, seen from ``yaw``/``pitch``.

    Animate ``view.yaw`` / ``view.pitch`` (ValueTrackers) to orbit. Add content with :meth:`curve`, :meth:`dots`,
    :meth:`arrow`, :meth:`label`; each returns its mobject, already in the view and updated every frame.
    """

    def __init__(self, center, scale: float, yaw: float = 0.6, pitch: float = 0.35, extent: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.center_point = np.asarray(center, dtype=float)
        self.scale_factor = scale
        self.extent = extent  # depth range used for shading (about the scene's radius)
        self.yaw, self.pitch = ValueTracker(yaw), ValueTracker(pitch)

    @property
    def camera(self) -> OrbitCamera:
        return OrbitCamera(yaw=self.yaw.get_value(), pitch=self.pitch.get_value())

    def to_frame(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World ``[n, 3]`` → frame points ``[n, 3]`` and depth ``[n]`` (negative = nearer)."""
        xy, depth = self.camera.project(np.asarray(points, dtype=float).reshape(-1, 3))
        frame = np.column_stack([xy * self.scale_factor, np.zeros(len(xy))]) + self.center_point
        return frame, depth

    # --- content ---------------------------------------------------------------------------------------------------

    def curve(self, geometry: Geometry, color, stroke_width: float = theme.STROKE_THIN, closed: bool = False,
              depth_split: bool = True) -> VGroup:
        """A polyline through ``geometry()`` ``[n, 3]``: front part at full opacity, back part dimmed."""
        front = VMobject().set_stroke(color, stroke_width).set_fill(opacity=0)
        back = VMobject().set_stroke(color, stroke_width, opacity=BACK_OPACITY).set_fill(opacity=0)
        group = VGroup(back, front)

        def update(_):
            pts = geometry()
            if closed:
                pts = np.vstack([pts, pts[:1]])
            frame, depth = self.to_frame(pts)
            is_front = depth <= 0 if depth_split else np.ones(len(depth), bool)
            _set_runs(front, frame, is_front)
            _set_runs(back, frame, ~is_front)

        group.add_updater(update)
        update(group)
        self.add(group)
        return group

    def disk(self, geometry: Geometry, color, opacity: float = 0.15) -> VMobject:
        """A filled polygon through ``geometry()`` ``[n, 3]`` (a plane seen in perspective), no outline."""
        patch = VMobject(stroke_width=0).set_fill(color, opacity)

        def update(mob):
            frame, _ = self.to_frame(geometry())
            mob.set_points_as_corners([*frame, frame[0]])

        patch.add_updater(update)
        update(patch)
        self.add(patch)
        return patch

    def segments(self, starts: Geometry, ends: Geometry, color, stroke_width: float = theme.STROKE_THIN,
                 opacity: float = 0.5) -> VMobject:
        """Straight segments from each of ``starts()`` to the matching ``ends()`` ([n, 3] each), as one mobject."""
        lines = VMobject().set_stroke(color, stroke_width, opacity=opacity).set_fill(opacity=0)

        def update(mob):
            a, _ = self.to_frame(starts())
            b, _ = self.to_frame(ends())
            mob.clear_points()
            for p, q in zip(a, b):
                if np.linalg.norm(q - p) > 1e-4:
                    mob.start_new_path(p)
                    mob.add_line_to(q)

        lines.add_updater(update)
        update(lines)
        self.add(lines)
        return lines

    def dots(self, geometry: Geometry, color, radius: float = 0.06) -> VGroup:
        """Dots at ``geometry()`` ``[n, 3]``, nearer ones more opaque; the count must stay fixed."""
        n = len(geometry())
        dots = VGroup(*(Dot(radius=radius, color=color) for _ in range(n)))

        def update(group):
            frame, depth = self.to_frame(geometry())
            shade = 0.35 + 0.65 * nearness(depth, self.extent)
            order = np.argsort(-depth)  # far first, so near dots are drawn on top
            for dot, i in zip(group.submobjects, order):
                dot.move_to(frame[i]).set_fill(opacity=shade[i])

        dots.add_updater(update)
        update(dots)
        self.add(dots)
        return dots

    def arrow(self, start: Geometry, end: Geometry, color, stroke_width: float = theme.STROKE) -> VGroup:
        """A 3D arrow from ``start()`` to ``end()``: a line and a small tip triangle, re-projected each frame."""
        shaft = Line(color=color, stroke_width=stroke_width)
        tip = VMobject(stroke_width=0).set_fill(color, 1)
        group = VGroup(shaft, tip)

        def update(_):
            (a, b), _depth = self.to_frame(np.array([start(), end()]))
            direction = b[:2] - a[:2]
            length = np.linalg.norm(direction)
            if length < 1e-6:
                shaft.set_points_as_corners([a, a])
                tip.set_points_as_corners([a, a, a, a])
                return
            unit = direction / length
            tip_len = min(theme.VECTOR_TIP, 0.35 * length)
            normal = np.array([-unit[1], unit[0]])
            base = b[:2] - unit * tip_len
            corners = [b[:2], base + normal * tip_len * 0.45, base - normal * tip_len * 0.45, b[:2]]
            shaft.set_points_as_corners([a, np.array([*base, 0.0])])
            tip.set_points_as_corners([np.array([*c, 0.0]) for c in corners])

        group.add_updater(update)
        update(group)
        self.add(group)
        return group

    def label(self, mobject, anchor: Geometry, offset=(0.0, 0.0)):
        """Keep a 2D mobject (a text label) at the projection of ``anchor()`` plus a frame-unit ``offset``."""

        def update(mob):
            frame, _ = self.to_frame(np.asarray(anchor())[None])
            mob.move_to(frame[0] + np.array([*offset, 0.0]))

        mobject.add_updater(update)
        update(mobject)
        self.add(mobject)
        return mobject


def _set_runs(mob: VMobject, frame: np.ndarray, mask: np.ndarray) -> None:
    """Set ``mob`` to the runs of consecutive points where ``mask`` holds, each run its own sub-path."""
    mob.clear_points()
    if not mask.any():
        return
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        stop = min(stop + 1, len(frame))  # join the run to the next point so halves meet
        run = frame[start:stop]
        if len(run) < 2:
            continue
        mob.start_new_path(run[0])
        mob.add_points_as_corners(run[1:])
