"""``neuron collect``: the service that receives the vendor platforms' pushes and lands them durably.

``store.MinuteStore`` (per-minute append files, group-committed fsync), ``app.build_app`` (the HTTP push
endpoints, /health, /metrics), ``mqtt.MqttSubscriber`` (ThingsBoard over MQTT, PUBACK after fsync),
``service.run`` (all three under uvicorn) and ``cli.main`` (the command line). docs/connectors.md is the contract.
"""
