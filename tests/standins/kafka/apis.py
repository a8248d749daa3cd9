"""The request and response schemas the stand-in speaks, one version per API, from the
Kafka protocol guide. Each is the newest non-flexible version aiokafka implements, which
is the version aiokafka negotiates with a Kafka 2.1+ broker; the stand-in advertises only
these (min = max), so every client that talks to it uses exactly them. librdkafka
(confluent-kafka) supports each of them too and negotiates down to them."""

from __future__ import annotations

from typing import Any

S, B, I8, I16, I32, I64, BOOL = "str", "bytes", "i8", "i16", "i32", "i64", "bool"

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14
SASL_HANDSHAKE, API_VERSIONS, INIT_PRODUCER_ID, SASL_AUTHENTICATE = 17, 18, 22, 36

#: api key → (version, request schema, response schema)
APIS: dict[int, tuple[int, Any, Any]] = {
    PRODUCE: (7, (
        ("transactional_id", S), ("acks", I16), ("timeout_ms", I32),
        ("topics", [(("name", S), ("partitions", [(("index", I32), ("records", B))]))]),
    ), (
        ("topics", [(("name", S), ("partitions", [(
            ("index", I32), ("error_code", I16), ("base_offset", I64), ("log_append_time_ms", I64),
            ("log_start_offset", I64))]))]),
        ("throttle_time_ms", I32),
    )),
    FETCH: (11, (
        ("replica_id", I32), ("max_wait_ms", I32), ("min_bytes", I32), ("max_bytes", I32),
        ("isolation_level", I8), ("session_id", I32), ("session_epoch", I32),
        ("topics", [(("name", S), ("partitions", [(
            ("partition", I32), ("current_leader_epoch", I32), ("fetch_offset", I64),
            ("log_start_offset", I64), ("partition_max_bytes", I32))]))]),
        ("forgotten_topics", [(("name", S), ("partitions", [I32]))]),
        ("rack_id", S),
    ), (
        ("throttle_time_ms", I32), ("error_code", I16), ("session_id", I32),
        ("responses", [(("topic", S), ("partitions", [(
            ("partition", I32), ("error_code", I16), ("high_watermark", I64), ("last_stable_offset", I64),
            ("log_start_offset", I64), ("aborted_transactions", [(("producer_id", I64), ("first_offset", I64))]),
            ("preferred_read_replica", I32), ("records", B))]))]),
    )),
    LIST_OFFSETS: (3, (
        ("replica_id", I32), ("isolation_level", I8),
        ("topics", [(("name", S), ("partitions", [(("partition", I32), ("timestamp", I64))]))]),
    ), (
        ("throttle_time_ms", I32),
        ("topics", [(("name", S), ("partitions", [(
            ("partition", I32), ("error_code", I16), ("timestamp", I64), ("offset", I64))]))]),
    )),
    METADATA: (5, (
        ("topics", [S]), ("allow_auto_topic_creation", BOOL),
    ), (
        ("throttle_time_ms", I32),
        ("brokers", [(("node_id", I32), ("host", S), ("port", I32), ("rack", S))]),
        ("cluster_id", S), ("controller_id", I32),
        ("topics", [(("error_code", I16), ("name", S), ("is_internal", BOOL), ("partitions", [(
            ("error_code", I16), ("partition", I32), ("leader", I32), ("replicas", [I32]), ("isr", [I32]),
            ("offline_replicas", [I32]))]))]),
    )),
    OFFSET_COMMIT: (3, (
        ("group_id", S), ("generation_id", I32), ("member_id", S), ("retention_time_ms", I64),
        ("topics", [(("name", S), ("partitions", [(("partition", I32), ("offset", I64), ("metadata", S))]))]),
    ), (
        ("throttle_time_ms", I32),
        ("topics", [(("name", S), ("partitions", [(("partition", I32), ("error_code", I16))]))]),
    )),
    OFFSET_FETCH: (3, (
        ("group_id", S), ("topics", [(("name", S), ("partitions", [I32]))]),
    ), (
        ("throttle_time_ms", I32),
        ("topics", [(("name", S), ("partitions", [(
            ("partition", I32), ("offset", I64), ("metadata", S), ("error_code", I16))]))]),
        ("error_code", I16),
    )),
    FIND_COORDINATOR: (1, (
        ("key", S), ("key_type", I8),
    ), (
        ("throttle_time_ms", I32), ("error_code", I16), ("error_message", S), ("node_id", I32), ("host", S),
        ("port", I32),
    )),
    JOIN_GROUP: (5, (
        ("group_id", S), ("session_timeout_ms", I32), ("rebalance_timeout_ms", I32), ("member_id", S),
        ("group_instance_id", S), ("protocol_type", S), ("protocols", [(("name", S), ("metadata", B))]),
    ), (
        ("throttle_time_ms", I32), ("error_code", I16), ("generation_id", I32), ("protocol_name", S),
        ("leader", S), ("member_id", S),
        ("members", [(("member_id", S), ("group_instance_id", S), ("metadata", B))]),
    )),
    HEARTBEAT: (1, (
        ("group_id", S), ("generation_id", I32), ("member_id", S),
    ), (
        ("throttle_time_ms", I32), ("error_code", I16),
    )),
    LEAVE_GROUP: (1, (
        ("group_id", S), ("member_id", S),
    ), (
        ("throttle_time_ms", I32), ("error_code", I16),
    )),
    SYNC_GROUP: (3, (
        ("group_id", S), ("generation_id", I32), ("member_id", S), ("group_instance_id", S),
        ("assignments", [(("member_id", S), ("assignment", B))]),
    ), (
        ("throttle_time_ms", I32), ("error_code", I16), ("assignment", B),
    )),
    INIT_PRODUCER_ID: (0, (
        ("transactional_id", S), ("transaction_timeout_ms", I32),
    ), (
        ("throttle_time_ms", I32), ("error_code", I16), ("producer_id", I64), ("producer_epoch", I16),
    )),
    SASL_HANDSHAKE: (1, (
        ("mechanism", S),
    ), (
        ("error_code", I16), ("mechanisms", [S]),
    )),
    SASL_AUTHENTICATE: (1, (
        ("auth_bytes", B),
    ), (
        ("error_code", I16), ("error_message", S), ("auth_bytes", B), ("session_lifetime_ms", I64),
    )),
}

#: ApiVersions is answered in v0..v2 (a newer request gets the v0 answer with
#: UNSUPPORTED_VERSION and the list, as brokers do, so the client retries with v2).
API_VERSIONS_RANGE = (0, 2)
API_VERSIONS_ENTRY = (("api_key", I16), ("min_version", I16), ("max_version", I16))
API_VERSIONS_V0 = (("error_code", I16), ("api_keys", [API_VERSIONS_ENTRY]))
API_VERSIONS_V1 = API_VERSIONS_V0 + (("throttle_time_ms", I32),)

# Error codes (the protocol guide's table), the ones this broker answers with.
NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
MESSAGE_TOO_LARGE = 10
COORDINATOR_NOT_AVAILABLE = 15
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
REBALANCE_IN_PROGRESS = 27
ILLEGAL_SASL_STATE = 34
UNSUPPORTED_SASL_MECHANISM = 33
UNSUPPORTED_VERSION = 35
INVALID_REQUEST = 42
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
SASL_AUTHENTICATION_FAILED = 58
MEMBER_ID_REQUIRED = 79
