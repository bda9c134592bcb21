"""What a run leaves behind: the JSON journal, the JUnit file and the HTML report, secrets masked.

* `write_journal` / `journal_dict`: the journal, a superset of Chaos Toolkit's;
* `write_junit`: JUnit XML for CI, one testsuite per run and one testcase per check;
* `write_html` / `write_html_suite`: a self-contained page with the verdict, the tables
  and a timeline chart of faults, probe results, latency, detection and recovery.
"""

from chaos_service.experiments.outputs.html import html_report, html_suite, write_html, write_html_suite
from chaos_service.experiments.outputs.journal import journal_dict, journal_json, write_journal
from chaos_service.experiments.outputs.junit import junit_xml, write_junit
from chaos_service.experiments.outputs.masking import MASK, Masker, is_secret_key

__all__ = [
    "MASK",
    "Masker",
    "html_report",
    "html_suite",
    "is_secret_key",
    "journal_dict",
    "journal_json",
    "junit_xml",
    "write_html",
    "write_html_suite",
    "write_journal",
    "write_junit",
]
