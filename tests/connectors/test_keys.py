"""Record keys are the same whichever wrapper (and whichever "0bject" typo) carried a GA/T 1400 record, so a push
in a misspelt wrapper counts as pushed and the pull does not land it a second time."""

from __future__ import annotations

import json

from connectors.keys import file_keys, record_key
from connectors.reconcile import reconcile, save_history_keys

CAR = {"MotorVehicleID": "31010700011190000001022026112009300000001", "PassTime": "20261120093000",
       "TollgateID": "31010700011210000001", "LaneNo": 1}
OTHER = {**CAR, "MotorVehicleID": CAR["MotorVehicleID"][:-1] + "2", "PassTime": "20261120093100"}


def test_every_wrapper_and_typo_gives_the_same_keys():
    expected = sorted([record_key("vehicle_passages", CAR), record_key("vehicle_passages", OTHER)])
    docs = [
        {"MotorVehicleListObject": {"MotorVehicleObject": [CAR, OTHER]}},
        {"MotorVehicleList0bject": {"MotorVehicle0bject": [CAR, OTHER]}},
        {"SubscribeNotificationListObject": {"SubscribeNotificationObject": [
            {"SubscribeID": "s1", "MotorVehicleObjectList": {"MotorVehicleObject": [CAR, OTHER]}}]}},
        {"SubscribeNotificationList0bject": {"SubscribeNotificationObject": [
            {"SubscribeID": "s1", "MotorVehicle0bjectList": {"MotorVehicle0bject": [CAR]}},
            {"SubscribeID": "s2", "MotorVehicleObjectList": {"MotorVehicleObject": [OTHER]}}]}},
    ]
    for doc in docs:
        assert sorted(file_keys("vehicle_passages", json.dumps(doc).encode(), "push-x.json")) == expected, doc


def test_a_typo_push_counts_as_pushed_in_the_reconciliation(tmp_path):
    folder = tmp_path / "vehicle_passages" / "2026-11-20" / "310107001001"
    folder.mkdir(parents=True)
    push = {"SubscribeNotificationList0bject": {"SubscribeNotificationObject": [
        {"SubscribeID": "s1", "MotorVehicle0bjectList": {"MotorVehicle0bject": [CAR]}}]}}
    (folder / "push-202611200930-c1-1.json").write_text(json.dumps(push))
    (folder / "pull-0900-1000.json").write_text(json.dumps({"MotorVehicleListObject": {"MotorVehicleObject": [OTHER]}}))
    save_history_keys(tmp_path, "vehicle_passages", "2026-11-20", "310107001001",
                      {record_key("vehicle_passages", CAR), record_key("vehicle_passages", OTHER)})
    r = reconcile(tmp_path, "vehicle_passages", "2026-11-20", "310107001001")
    assert (r.pushed, r.reconciled, r.platform_total, r.pushed_not_in_history) == (1, 1, 2, 0)
    assert r.balanced
