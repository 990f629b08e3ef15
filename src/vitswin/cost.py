"""The cost stage: what each trained model costs, measured once and kept in the study folder, so that a report
rebuilt later shows the same numbers.

Parameters and FLOPs per image are properties of the architecture (each run's cost.json). Speed is a property of
the network on one machine, and a speed difference needs a measurement made for it: every distinct network of the
study is timed in one process, training steps (AdamW, forward and backward) and inference batches, in rounds that
take turns (the order reversed every other round), so that drift on a shared machine hits every model alike
(speed.json). The spread over the rounds is what the findings test against. The wall clock of the training runs
is not used: runs that trained side by side, or beside other work, shared the machine.
"""

import json
import logging

import torch

from vitswin.bench.measure import (
    THROUGHPUT_BATCH,
    TrainSettings,
    flops_per_image,
    median_seconds,
    training_step,
)
from vitswin.config import ModelConfig, StudyConfig
from vitswin.environment import describe_environment
from vitswin.model.architecture import parameter_count
from vitswin.model.network import build_network
from vitswin.study_folder import NetworkSpeed, RunFolder, StudyFolder, StudySpeed

log = logging.getLogger(__name__)

SPEED_ROUNDS = 5


def measure_cost(run: RunFolder) -> dict:
    """Measure a finished run's architecture (random weights: the cost does not depend on their values) and
    write the run's cost.json; returns what it wrote."""
    model = next(iter(run.read_config().models.values()))
    network = build_network(model, len(run.read_metrics()["class_names"]), weights="random")
    cost = {"parameters": parameter_count(network), "flops_per_image": flops_per_image(network, model.input_size)}
    run.write_cost(cost)
    return cost


def network_identity(model: ModelConfig) -> str:
    """What makes a network what it is for its speed: two models with the same identity are the same network."""
    return json.dumps({"name": model.name, "input_size": model.input_size, "options": model.options}, sort_keys=True)


def measure_speed(study: StudyFolder, config: StudyConfig, classes: int, rounds: int = SPEED_ROUNDS) -> StudySpeed:
    """Time every distinct network of `config` interleaved (training images/s and inference images/s per round,
    batches of THROUGHPUT_BATCH on the training device), write the study's speed.json and return it."""
    device = torch.device("cuda" if torch.cuda.is_available() and config.accelerator != "cpu" else "cpu")
    cells = config.cells
    identities = {key: network_identity(model) for key, model in cells.items()}
    distinct = {identity: cells[key] for key, identity in reversed(identities.items())}
    timers = {identity: _timers(model, classes, device) for identity, model in distinct.items()}
    times: dict[str, dict[str, list[float]]] = {identity: {"train": [], "inference": []} for identity in distinct}
    order = list(distinct)
    for index in range(rounds):
        for identity in order if index % 2 == 0 else order[::-1]:
            for kind, step in timers[identity].items():
                times[identity][kind].append(THROUGHPUT_BATCH / median_seconds(step, device, repeats=1, warmup=0))
    machine = describe_environment()
    speed = StudySpeed(
        machine={"cpu": machine["cpu"], "gpu": machine["gpu"], "device": device.type, "threads": torch.get_num_threads()},
        batch=THROUGHPUT_BATCH,
        rounds=rounds,
        models={
            key: NetworkSpeed(identity, times[identity]["train"], times[identity]["inference"])
            for key, identity in identities.items()
        },
    )
    study.write_speed(speed)
    return speed


def _timers(model: ModelConfig, classes: int, device: torch.device) -> dict[str, object]:
    """One training step and one inference batch of the network, warmed up (first allocations, kernel choice)."""
    network = build_network(model, classes, weights="random").to(device)
    train = training_step(network, model.input_size, TrainSettings(batch=THROUGHPUT_BATCH))
    evaluated = build_network(model, classes, weights="random").to(device).eval()
    images = torch.randn(THROUGHPUT_BATCH, 3, model.input_size, model.input_size, device=device)

    @torch.no_grad()
    def infer() -> None:
        evaluated(images)

    for step in (train, infer):
        step()
    return {"train": train, "inference": infer}


def measure_costs(study: StudyFolder) -> None:
    """Measure every evaluated run of the study that has no cost.json yet, and the study's speeds when speed.json
    is missing or times other networks than the study's."""
    config = study.read_config()
    evaluated = [run for run in study.runs(config) if not run.missing(RunFolder.EVALUATED)]
    pending = [run for run in evaluated if run.read_cost() is None]
    if pending:
        log.info("Measuring parameters and FLOPs of %d models", len(pending))
    for run in pending:
        measure_cost(run)
    speed = study.read_speed()
    timed = {key: value.network for key, value in speed.models.items()} if speed else {}
    identities = {key: network_identity(model) for key, model in config.cells.items()}
    if evaluated and timed != identities:
        log.info(
            "Timing the training and inference speed of %d networks, %d rounds taking turns",
            len(set(identities.values())),
            SPEED_ROUNDS,
        )
        measure_speed(study, config, len(evaluated[0].read_metrics()["class_names"]))
