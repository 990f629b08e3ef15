"""`vitswin report`: the comparison report of a study, rebuilt from its folders' plain files: no retraining,
no measuring, so building it twice gives the same files.

Writes `<study>/report.html` (self-contained: opens offline) and `<study>/report.md` (the same content,
its figures in `<study>/report_files/`).
"""

from pathlib import Path

from vitswin.artifacts import atomic_write_text
from vitswin.registry import SECTIONS, resolve
from vitswin.report import sections
from vitswin.report.document import Block, Heading, Paragraph, save_plots, to_html, to_markdown
from vitswin.report.findings import finding_record, findings
from vitswin.report.inputs import EXPLANATION_FIRST, ReportContext, StudyInputs, load_study
from vitswin.study_folder import StudyFolder


def build_report(study_dir: Path, replicate_dirs: tuple[Path, ...] = ()) -> tuple[Path, Path]:
    """Write report.html, report.md and findings.json for the study in `study_dir`; the runs of `replicate_dirs` (the
    same study trained into other folders with other seeds) join as more seeds. Returns the two reports' paths."""
    study = StudyFolder(study_dir)
    report = judge(load_study(study, tuple(StudyFolder(path) for path in replicate_dirs)))
    blocks = save_plots(report_blocks(report), study.report_files)
    title = f"vitswin report: {report.inputs.config.name}"
    atomic_write_text(to_markdown(blocks, study.path), study.report_markdown)
    atomic_write_text(to_html(blocks, title), study.report_html)
    study.write_findings([finding_record(finding) for finding in report.findings])
    study.record_stage("report")
    return study.report_html, study.report_markdown


def judge(inputs: StudyInputs) -> ReportContext:
    """What the findings know about each model (cell) of the study, and the findings themselves."""
    config, runs = inputs.config, inputs.runs
    method, explained = next(iter(inputs.explanations.items()), (EXPLANATION_FIRST, []))
    cells = {cell: (model, values) for model, design in config.design().items() for cell, values in design.items()}
    facts = [sections.model_facts(runs[key], explained, inputs.speed, cells[key]) for key in runs]
    machine = sections.speed_machine(inputs.speed)
    judged = findings(
        facts,
        method,
        test_selected=inputs.first_runs()[0].train.get("validation") == "test",
        primary=config.primary,
        machine=machine,
        notes=sections.explanation_notes(explained, list(runs)),
    )
    return ReportContext(inputs, judged, facts, method, machine)


def report_blocks(report: ReportContext) -> list[Block]:
    """The whole report, in order: the title, then every registered section (the hypotheses, the findings, ...)."""
    config, runs, seeds = report.inputs.config, report.inputs.runs, report.inputs.seeds
    return [
        Heading(f"vitswin report: {config.name}", 1),
        Paragraph(
            f"{len(runs)} models ({', '.join(runs)}), each trained with {len(seeds)} seed{'s' * (len(seeds) > 1)} "
            f"({', '.join(map(str, seeds))}), all tested on the same images. Every number below is read from the study "
            f"folder {report.inputs.folder.path}."
        ),
        *(block for section in SECTIONS for block in resolve(section.build)(report)),
    ]
