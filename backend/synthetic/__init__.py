"""Synthetic data for the risk engine: a generator with known ground truth (`generate`), its fast
loading into a tenant (`load_dataset`), and CRM exports as CSV (`crm_export_csv`). Used by the
demo tenant, the tests, the benchmarks and `churnsaver synthetic`."""

from churnsaver.backend.synthetic.crm_export import CrmExport, crm_export_csv
from churnsaver.backend.synthetic.generator import ChurnCause, CustomerTruth, SyntheticDataset, generate
from churnsaver.backend.synthetic.loading import LoadReport, load_dataset

__all__ = [
    "ChurnCause",
    "CrmExport",
    "CustomerTruth",
    "LoadReport",
    "SyntheticDataset",
    "crm_export_csv",
    "generate",
    "load_dataset",
]
