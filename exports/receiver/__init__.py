"""Reference receiver: the executable spec of the HTTP push protocol that we hand to the district."""

from exports.receiver.cli import main
from exports.receiver.contract import (
    Contract,
    ContractColumn,
    canonical_type,
    contract_from_dict,
    load_contracts,
    validate_contract_files,
    validate_csv,
    validate_files,
    validate_parquet,
)
from exports.receiver.http import (
    OPENAPI_PATH,
    ReceiverServer,
    RequestRecord,
    RunningReceiver,
    make_server,
    run_in_thread,
)
from exports.receiver.store import ApiError, ReceiverStore

__all__ = [
    "OPENAPI_PATH",
    "ApiError",
    "Contract",
    "ContractColumn",
    "ReceiverServer",
    "ReceiverStore",
    "RequestRecord",
    "RunningReceiver",
    "canonical_type",
    "contract_from_dict",
    "load_contracts",
    "main",
    "make_server",
    "run_in_thread",
    "validate_contract_files",
    "validate_csv",
    "validate_files",
    "validate_parquet",
]
