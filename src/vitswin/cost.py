"""The cost stage: what each trained model costs to run, measured once and kept in its run folder
(cost.json), so that a report rebuilt later shows the same numbers.

Parameters and FLOPs per image are properties of the architecture; inference images/s is timed on this
machine's CPU (batches of 32, eval mode), so the machine is recorded beside it. Training speed is not
measured here: training itself timed every epoch (history.csv).
"""

import logging

from vitswin.bench.measure import THROUGHPUT_BATCH, flops_per_image, inference_throughput, parameter_count
from vitswin.environment import describe_environment
from vitswin.models import build_network
from vitswin.study_folder import RunFolder, StudyFolder

log = logging.getLogger(__name__)


def measure_cost(run: RunFolder) -> dict:
    """Measure a finished run's architecture (random weights: the cost does not depend on their values) and
    write the run's cost.json; returns what it wrote."""
    model = next(iter(run.read_config().models.values()))
    network = build_network(model, len(run.read_metrics()["class_names"]), weights="random")
    machine = describe_environment()
    cost = {
        "parameters": parameter_count(network),
        "flops_per_image": flops_per_image(network, model.input_size),
        "inference_images_per_s": inference_throughput(network, model.input_size),
        "inference_batch": THROUGHPUT_BATCH,
        "machine": {"cpu": machine["cpu"], "gpu": machine["gpu"]},
    }
    run.write_cost(cost)
    return cost


def measure_costs(study: StudyFolder) -> None:
    """Measure every evaluated run of the study that has no cost.json yet."""
    config = study.read_config()
    pending = [run for run in study.runs(config) if not run.missing(RunFolder.EVALUATED) and run.read_cost() is None]
    if pending:
        log.info("Measuring parameters, FLOPs and inference speed of %d models", len(pending))
    for run in pending:
        measure_cost(run)
