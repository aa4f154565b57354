"""TrainingExplorer: watch the classification regions of a small model form while it trains."""

from __future__ import annotations

import math
import time

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import torch
import traitlets

from ..core import Classifier, Plane, PlaneSlice, compute_slice
from ..core.dataset import Dataset
from ..core.directions import Bool, Choice, Float, Int
from ..core.directions.params import MAX_INDEX
from ..core.extent import data_square
from ..core.training import ADVERSARIAL_METHODS, LiveTraining, build_network
from .base import Explorer
from .settings import Point, Resolution, bind, setting, weakly
from .views import SliceMapView, data_points_mark
from .worker import Job

__all__ = ["TrainingExplorer"]

_STARTS = ("fresh", "copy")
_DATA_POINTS = 400  # training points drawn over a 2-D model's map
_PADDING = 0.35  # of the span of the three images, around them, for an image model's plane
_PLAY_FRAMES_PER_SECOND = 12.0  # while playing, epochs between two frames are trained but not drawn


class TrainingExplorer(Explorer):
    """Train a small model live and watch the regions of a fixed plane change epoch by epoch.

    ``TrainingExplorer(clf, dataset)`` trains on ``dataset``'s train split. ``clf`` gives the
    input space (shape, bounds, normalisation, class names); the model trained is either a fresh
    network of ``width`` and ``depth`` (``start="fresh"``: an MLP for 2-D inputs, a small CNN for
    images) or a copy of ``clf``'s own module (``start="copy"``). The user's module is never
    trained. A model with 2-D inputs is drawn over its whole input space with the data points;
    an image model over the fixed plane through three test images of different classes.

    :meth:`play` trains epoch after epoch until :meth:`pause`; :meth:`step` trains ``n`` epochs.
    Learning rate, weight decay, adversarial training (``"pgd"`` or ``"deepfool"`` perturbations
    of each batch, at most ``epsilon`` in L2) apply from the next batch; ``start``, ``width``,
    ``depth`` and ``seed`` start a new model. Every frame is a dense slice at ``resolution``.

    Attributes: ``training`` (the :class:`~boundary_widgets.core.training.LiveTraining`),
    ``slice`` (the last frame), ``frames_per_second`` (over the last frames drawn).
    """

    start = setting(Choice, "fresh", "train a fresh network, or a copy of the classifier's module", choices=_STARTS)
    width = setting(Int, 16, "hidden units (channels) per layer of a fresh network", minimum=1, maximum=256)
    depth = setting(Int, 2, "hidden layers of a fresh network", minimum=1, maximum=6)
    learning_rate = setting(Float, 0.05, "step size of each batch", minimum=1e-6, maximum=10.0)
    weight_decay = setting(Float, 0.0, "L2 penalty on the weights", maximum=1.0)
    adversarial = setting(Choice, "none", "perturb each batch before the step", choices=tuple(ADVERSARIAL_METHODS))
    epsilon = setting(Float, 0.3, "L2 size of the adversarial perturbations", minimum=1e-6, maximum=1e3)
    seed = setting(Int, 0, "seed of the fresh network and the batch order", maximum=MAX_INDEX)
    resolution = setting(Resolution, 64, "cells per axis of each frame", minimum=8, maximum=256)
    boundaries = setting(Bool, True, "draw the decision boundaries")
    click = setting(Point, None, "(alpha, beta) of the inspected point, or None")
    playing = traitlets.Bool(False, help="whether epochs follow one another until paused")

    _COMPUTE = ("start", "width", "depth", "seed")  # a new model
    _LIVE = ("learning_rate", "weight_decay", "adversarial", "epsilon")

    def __init__(
        self,
        clf: Classifier,
        dataset: Dataset,
        *,
        start: str = "fresh",
        width: int = 16,
        depth: int = 2,
        learning_rate: float = 0.05,
        weight_decay: float = 0.0,
        adversarial: str = "none",
        epsilon: float = 0.3,
        seed: int = 0,
        resolution: int = 64,
        boundaries: bool = True,
        click: tuple[float, float] | None = None,
        threaded: bool = True,
    ) -> None:
        super().__init__(clf, threaded=threaded)
        if not isinstance(dataset, Dataset):
            raise TypeError(f"`dataset` must be a boundary_widgets.Dataset; got {type(dataset).__name__}.")
        self.template = clf
        self.dataset = dataset
        self.images, self.labels = dataset.split("train")
        clf.check_inputs(self.images, "dataset", batched=True, in_bounds=True)
        self.planar = clf.input_shape == (2,)
        self._set_settings(
            start=start,
            width=width,
            depth=depth,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            adversarial=adversarial,
            epsilon=epsilon,
            seed=seed,
            resolution=resolution,
            boundaries=boundaries,
            click=click,
        )
        self._plane, self.box, self.anchors = self._fixed_plane()
        self._slice: PlaneSlice | None = None
        self.frames_per_second = 0.0
        self._frame_times: list[float] = []
        self._play_epochs: int | None = None
        self.training = self._new_training()
        self._build_controls()
        self.observe(self._request, names=list(self._COMPUTE))
        self.observe(self._live_setting, names=list(self._LIVE))
        self.observe(lambda _change: self._redraw(), names=["resolution", "boundaries"])
        self.observe(self._on_playing, names=["playing"])
        self._redraw()

    # --- the model ----------------------------------------------------------------------------
    def _new_training(self) -> LiveTraining:
        torch.manual_seed(self.seed)
        template = self.template
        if self.start == "fresh":
            net = build_network(template.input_shape, template.num_classes, width=self.width, depth=self.depth)
            source = template.with_module(net)
        else:
            source = template
        training = LiveTraining(
            source,
            self.images,
            self.labels,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            adversarial=self.adversarial,
            epsilon=self.epsilon,
            seed=self.seed,
        )
        self.clf = training.classifier  # clicks inspect the model in training
        return training

    def _fixed_plane(self) -> tuple[Plane, tuple, dict[str, tuple[float, float]]]:
        test_images, test_labels = self.dataset.split("test")
        if self.planar:
            centre, half = data_square(self.dataset.images)
            box = ((centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half))
            plane = Plane.through(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
            return plane, box, {}
        chosen: list[int] = []
        for index, label in enumerate(test_labels.tolist()):
            if all(label != int(test_labels[j]) for j in chosen):
                chosen.append(index)
            if len(chosen) == 3:
                break
        if len(chosen) < 3:
            raise ValueError("`dataset` must have test images of at least three classes for the plane.")
        first, second, third = (test_images[i] for i in chosen)
        plane = Plane.through(first, second - first, third - first)
        names = [f"test #{i} ({self.template.class_names[int(test_labels[i])]})" for i in chosen]
        anchors = {
            names[0]: (0.0, 0.0),
            names[1]: plane.coordinates(second),
            names[2]: plane.coordinates(third),
        }
        coordinates = np.array(list(anchors.values()))
        low, high = coordinates.min(axis=0), coordinates.max(axis=0)
        pad = _PADDING * float((high - low).max())
        box = ((low[0] - pad, high[0] + pad), (low[1] - pad, high[1] + pad))
        return plane, box, anchors

    # --- controls -----------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.play_button = widgets.ToggleButton(value=False, description="play", icon="play", layout={"width": "86px"})
        bind(self, "playing", self.play_button)
        self.step_button = widgets.Button(description="step", icon="step-forward", layout={"width": "86px"})
        self.step_button.on_click(weakly(self, lambda explorer, _button: explorer.step()))
        self.reset_button = widgets.Button(description="reset", icon="undo", layout={"width": "86px"})
        self.reset_button.on_click(weakly(self, lambda explorer, _button: explorer.reset()))
        self.epoch_label = widgets.HTML()
        self.epoch_label.add_class("bw-epoch")
        spec = {name: trait.spec for name, trait in self.settings().items()}

        def log_slider(name: str, lowest: float, step: float, description: str) -> widgets.FloatLogSlider:
            low, high = math.log10(max(spec[name].minimum, lowest)), math.log10(spec[name].maximum)
            return widgets.FloatLogSlider(
                base=10, min=low, max=high, step=step, description=description, continuous_update=False
            )

        def int_slider(name: str) -> widgets.IntSlider:
            return widgets.IntSlider(
                min=spec[name].minimum, max=spec[name].maximum, description=name, continuous_update=False
            )

        resolution = spec["resolution"]
        controls = {
            "start": widgets.ToggleButtons(
                options=list(spec["start"].choices), description="model", style={"button_width": "60px"}
            ),
            "width": int_slider("width"),
            "depth": int_slider("depth"),
            "learning_rate": log_slider("learning_rate", 1e-4, 0.1, "learning rate"),
            "weight_decay": widgets.FloatSlider(
                min=spec["weight_decay"].minimum,
                max=spec["weight_decay"].maximum,
                step=0.001,
                description="weight decay",
                readout_format=".3f",
                continuous_update=False,
            ),
            "adversarial": widgets.Dropdown(options=list(spec["adversarial"].choices), description="adversarial"),
            "epsilon": log_slider("epsilon", 1e-2, 0.05, "epsilon (L2)"),
            "resolution": widgets.Dropdown(
                options=[r for r in (32, 48, 64, 96, 128) if resolution.minimum <= r <= resolution.maximum],
                description="resolution",
            ),
            "boundaries": widgets.Checkbox(description="boundary lines", indent=False),
        }
        for name, control in controls.items():
            control.style.description_width = "initial"
            if name != "start":
                control.layout.width = "260px"  # the panel, map and preview fit side by side in 845 px
            bind(self, name, control)
        self.controls = controls
        self._sync_architecture_controls()
        self.observe(lambda _change: self._sync_architecture_controls(), names=["start"])

        overlays = []
        if self.planar:
            points = self.images.reshape(-1, 2).numpy()[:_DATA_POINTS]
            labels = self.labels.numpy()[:_DATA_POINTS]
            overlays = [lambda scales: data_points_mark(scales, self.template.num_classes, points, labels)]
        axis_labels = ("x₁", "x₂") if self.planar else ("α (L2)", "β (L2)")  # not `labels`: the overlay reads those
        self.map_view = SliceMapView(
            self.template.class_names,
            on_click=weakly(self, lambda explorer, alpha, beta: explorer.select(alpha, beta)),
            overlays=overlays,
            x_label=axis_labels[0],
            y_label=axis_labels[1],
            size=300,
        )
        self.epoch_scale = bq.LinearScale(min=0.0)
        self.metric_scale = bq.LinearScale(min=0.0)
        scales = {"x": self.epoch_scale, "y": self.metric_scale}
        self.loss_line = bq.Lines(x=[], y=[], scales=scales, colors=["#b00020"], labels=["loss"], display_legend=True)
        self.accuracy_line = bq.Lines(
            x=[], y=[], scales=scales, colors=["#117733"], labels=["accuracy"], display_legend=True
        )
        self.history_chart = bq.Figure(
            marks=[self.loss_line, self.accuracy_line],
            axes=[
                bq.Axis(scale=self.epoch_scale, label="epoch", num_ticks=4),
                bq.Axis(scale=self.metric_scale, side="left", num_ticks=3, tick_format=".1f"),
            ],
            animation_duration=0,
            display_toolbar=False,
            legend_location="top-right",
            fig_margin={"top": 10, "bottom": 35, "left": 40, "right": 10},
            layout=widgets.Layout(width="265px", height="160px"),
        )
        buttons = widgets.HBox([self.play_button, self.step_button, self.reset_button])
        panel = widgets.VBox(
            [buttons, self.epoch_label, *controls.values(), self.history_chart], layout={"width": "270px"}
        )
        self._build_ui(panel, self.map_view.ui, "bw-training-explorer")

    def _sync_architecture_controls(self) -> None:
        fresh = self.start == "fresh"
        for name in ("width", "depth"):
            self.controls[name].disabled = not fresh
            self.controls[name].tooltip = None if fresh else "the copy keeps its own architecture"

    # --- actions ------------------------------------------------------------------------------
    def step(self, epochs: int = 1) -> None:
        """Train ``epochs`` more epochs, drawing each; pauses a running play."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"`epochs` must be a positive integer; got {epochs!r}.")
        self.playing = False
        self._submit(lambda job: self._train(job, epochs))

    def play(self, epochs: int | None = None) -> None:
        """Train until :meth:`pause` (or for ``epochs`` epochs). ``threaded=False`` needs ``epochs``."""
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            raise ValueError(f"`epochs` must be None or a positive integer; got {epochs!r}.")
        if epochs is None and not self.worker.threaded:
            raise ValueError("`epochs` must be given when the explorer is not threaded (play would never return).")
        self._play_epochs = epochs
        if self.playing:
            self._submit(lambda job: self._train(job, epochs))
        else:
            self.playing = True

    def pause(self) -> None:
        """Stop after the epoch under way."""
        self.playing = False

    def reset(self) -> None:
        """A new model from ``seed`` (fresh, or a new copy of the classifier's module); epoch 0 is drawn."""
        self.refresh()

    def refresh(self) -> Job:
        """Start a new model for the current settings (what :meth:`reset` does)."""
        self._requested = self._work_settings()
        self.playing = False
        return self._submit(self._restart)

    def _restart(self, job: Job) -> None:
        self.training = self._new_training()
        self._frame_times = []
        self._draw_frame(job)

    def _live_setting(self, change: dict) -> None:
        setattr(self.training, change["name"], change["new"])

    def _on_playing(self, change: dict) -> None:
        self.play_button.icon = "pause" if change["new"] else "play"
        self.play_button.description = "pause" if change["new"] else "play"
        if change["new"]:
            epochs = getattr(self, "_play_epochs", None)
            self._play_epochs = None
            self._submit(lambda job: self._train(job, epochs))

    def _redraw(self) -> None:
        self._submit(self._draw_frame)

    # --- work -----------------------------------------------------------------------------------
    def _train(self, job: Job, epochs: int | None) -> None:
        """Train ``epochs`` epochs drawing each, or (None) play until paused drawing at most
        ``_PLAY_FRAMES_PER_SECOND``: a browser that falls behind the frames would show "pause"
        taking effect many epochs late."""
        done, drawn_at, undrawn = 0, time.perf_counter(), False
        while epochs is None or done < epochs:
            if epochs is None and not self.playing:
                break
            job.check()
            self.training.train_epoch(cancel=job.cancel)
            done += 1
            now = time.perf_counter()
            undrawn = epochs is None and now - drawn_at < 1.0 / _PLAY_FRAMES_PER_SECOND
            if not undrawn:
                drawn_at = self._timed_frame(job, drawn_at)
        if undrawn:
            self._timed_frame(job, drawn_at)  # the epoch the pause stopped at
        if epochs is not None and self.playing:
            self.playing = False

    def _timed_frame(self, job: Job, since: float) -> float:
        """Draw a frame, count it in ``frames_per_second`` (frames since ``since``); the time it was drawn."""
        self._draw_frame(job)
        now = time.perf_counter()
        self._frame_times = [*self._frame_times[-9:], now - since]
        self.frames_per_second = len(self._frame_times) / sum(self._frame_times)
        return now

    def _draw_frame(self, job: Job) -> None:
        sl = compute_slice(
            self.training.classifier,
            self._plane,
            extent=self.box,
            resolution=self.resolution,
            method="dense",
            cache=False,
            cancel=job.cancel,
        )
        job.check()
        self._slice = sl
        epoch = self.training.epoch
        self.map_view.show(
            sl,
            shading="labels",
            boundaries=self.boundaries,
            anchors=self.anchors,
            title=f"epoch {epoch}" + ("" if self.planar else " · the plane through three test images"),
            bounds=None if self.planar else self.template.bounds,
            plane=None if self.planar else self._plane,
        )
        history = self.training.history
        with self.loss_line.hold_sync(), self.accuracy_line.hold_sync():
            epochs = np.array([r.epoch for r in history], dtype=float)
            self.loss_line.x = self.accuracy_line.x = epochs
            self.loss_line.y = np.array([r.loss for r in history], dtype=float)
            self.accuracy_line.y = np.array([r.accuracy for r in history], dtype=float)
        last = history[-1] if history else None
        text = f"<b>epoch {epoch}</b>" + (
            f" · loss {last.loss:.3f} · train accuracy {last.accuracy:.1%}" if last is not None else ""
        )
        if self.frames_per_second:
            text += f" · {self.frames_per_second:.1f} frames/s"
        self.epoch_label.value = text
        self._succeed(f"epoch {epoch} drawn ({sl.resolution[0]}×{sl.resolution[1]} dense)")
        if self.click is not None:
            self.select(*self.click)

    @property
    def plane(self) -> Plane:
        """The fixed plane every frame shows."""
        return self._plane

    @property
    def slice(self) -> PlaneSlice | None:
        """The last frame drawn (None before the first)."""
        return self._slice

    # --- inspection -------------------------------------------------------------------------------
    def select(self, alpha: float, beta: float) -> None:
        """Inspect the input at ``(alpha, beta)`` with the model in training."""
        self.click = (alpha, beta)
        alpha, beta = self.click
        image = self._plane.point(alpha, beta)
        self.map_view.mark_click((alpha, beta))
        self.inspect(image, alpha, beta, f"epoch {self.training.epoch} at ({alpha:.3f}, {beta:.3f})")

    def _show_error(self, message: str) -> None:
        self.map_view.show_error(message)
