"""Seeded, deterministic generators of the three benchmark streams.

Each generator yields log event messages (one line each, no newline); the same
``(n, seed)`` always gives the same lines, on any machine and Python >= 3.11.

- :func:`cloudtrail_events`: CloudTrail records as CloudTrail delivers them to
  CloudWatch Logs (one compact JSON object per event, about 1.5 KB). About 96 % are
  routine calls (EC2/IAM/CloudTrail reads, S3 and KMS data calls, STS, Lambda,
  console sign-ins with MFA, service events, throttling errors) and about 4 % are
  the security events the CIS monitoring filters look for (unauthorised calls,
  sign-ins without MFA or failing, root use, IAM/CloudTrail/KMS/S3/Config/network/
  Organizations changes), with near misses on both sides (root calls made by a
  service, console sign-ins with MFA, read-only calls to the same services).
- :func:`vpc_flow_lines`: VPC Flow Logs, version 2 default format, about 20 %
  ``REJECT``, about 1 % ``NODATA``/``SKIPDATA`` records whose fields are ``-``.
- :func:`app_log_lines`: plain-text application logs (timestamp, level, thread,
  logger, key=value request fields) with INFO/DEBUG/WARN/ERROR/FATAL levels.

Events come in time order (the streams are replayed through per-minute aggregation).
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

#: The start of every stream's event time (UTC).
EPOCH = _dt.datetime(2024, 3, 5, tzinfo=_dt.timezone.utc)
EPOCH_S = int(EPOCH.timestamp())

_ACCOUNTS = ("111122223333", "444455556666", "777788889999")
_REGIONS = ("us-east-1", "us-east-1", "us-east-1", "eu-west-1", "us-west-2")
_USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
_ROLES = ("ci-deploy", "lambda-orders", "ecs-task-api", "AWSServiceRoleForConfig", "ReadOnlyAuditor")
_AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1014-aws exe/x86_64.ubuntu.22 prompt/off command/ec2.describe-instances",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.79 md/arch#x86_64 lang/python#3.12.2 "
    "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-java/2.25.16 Linux/5.10.210-201.852.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS "
    "Java/17.0.10 vendor/Amazon.com_Inc. io/async http/NettyNio cfg/retry-mode/adaptive",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "terraform-provider-aws/5.41.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.3 "
    "os/linux lang/go#1.21.8 md/GOOS#linux md/GOARCH#amd64",
)
_CIPHERS = ("TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_256_GCM_SHA384")
_CONSOLE = "https://console.aws.amazon.com/console/home"
_BUCKETS = ("orders-archive-prod", "analytics-raw-eu", "ci-artifacts", "cloudtrail-logs-111122223333")


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:]}"


def _ip(rng: random.Random) -> str:
    return f"{rng.choice((10, 172, 198, 203))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


# ---- CloudTrail -------------------------------------------------------------------------------

# (eventSource, eventName, readOnly) of routine calls, with relative weights.
_ROUTINE = (
    ("ec2.amazonaws.com", "DescribeInstances", True, 14),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", True, 5),
    ("ec2.amazonaws.com", "DescribeVpcs", True, 3),
    ("ec2.amazonaws.com", "DescribeRouteTables", True, 2),
    ("ec2.amazonaws.com", "DescribeNetworkAcls", True, 2),
    ("s3.amazonaws.com", "GetObject", True, 16),
    ("s3.amazonaws.com", "PutObject", False, 8),
    ("s3.amazonaws.com", "GetBucketPolicy", True, 2),
    ("kms.amazonaws.com", "Decrypt", True, 10),
    ("kms.amazonaws.com", "GenerateDataKey", True, 5),
    ("kms.amazonaws.com", "DescribeKey", True, 2),
    ("sts.amazonaws.com", "AssumeRole", True, 9),
    ("sts.amazonaws.com", "GetCallerIdentity", True, 3),
    ("lambda.amazonaws.com", "Invoke", False, 6),
    ("logs.amazonaws.com", "CreateLogStream", False, 3),
    ("iam.amazonaws.com", "GetRolePolicy", True, 2),
    ("iam.amazonaws.com", "ListAttachedRolePolicies", True, 2),
    ("cloudtrail.amazonaws.com", "DescribeTrails", True, 1),
    ("cloudtrail.amazonaws.com", "LookupEvents", True, 1),
    ("config.amazonaws.com", "DescribeConfigurationRecorders", True, 1),
    ("organizations.amazonaws.com", "DescribeOrganization", True, 1),
)
_ROUTINE_WEIGHTS = tuple(w for *_, w in _ROUTINE)

# Security events: (eventSource, eventName) per CIS area.
_CHANGES = {
    "iam": ("iam.amazonaws.com", ("PutRolePolicy", "AttachRolePolicy", "DetachUserPolicy", "CreatePolicy",
                                   "DeletePolicyVersion", "PutUserPolicy", "AttachGroupPolicy")),
    "cloudtrail": ("cloudtrail.amazonaws.com", ("StopLogging", "UpdateTrail", "DeleteTrail", "CreateTrail")),
    "kms": ("kms.amazonaws.com", ("DisableKey", "ScheduleKeyDeletion")),
    "s3": ("s3.amazonaws.com", ("PutBucketPolicy", "PutBucketAcl", "DeleteBucketPolicy", "PutBucketLifecycle")),
    "config": ("config.amazonaws.com", ("StopConfigurationRecorder", "DeleteDeliveryChannel",
                                         "PutConfigurationRecorder")),
    "sg": ("ec2.amazonaws.com", ("AuthorizeSecurityGroupIngress", "RevokeSecurityGroupEgress", "CreateSecurityGroup")),
    "nacl": ("ec2.amazonaws.com", ("CreateNetworkAclEntry", "ReplaceNetworkAclEntry", "DeleteNetworkAcl")),
    "gateway": ("ec2.amazonaws.com", ("AttachInternetGateway", "CreateCustomerGateway", "DeleteInternetGateway")),
    "route": ("ec2.amazonaws.com", ("CreateRoute", "ReplaceRoute", "DeleteRouteTable", "DisassociateRouteTable")),
    "vpc": ("ec2.amazonaws.com", ("CreateVpc", "ModifyVpcAttribute", "CreateVpcPeeringConnection", "DeleteVpc")),
    "organizations": ("organizations.amazonaws.com", ("CreateAccount", "AttachPolicy", "LeaveOrganization",
                                                      "CreatePolicy", "MoveAccount")),
}
_SECURITY_KINDS = (
    "unauthorized", "access_denied", "no_mfa_signin", "failed_signin", "root", *_CHANGES,
)
SECURITY_FRACTION = 0.04


def _identity(rng: random.Random, account: str, kind: str) -> dict:
    if kind == "root":
        return {
            "type": "Root",
            "principalId": account,
            "arn": f"arn:aws:iam::{account}:root",
            "accountId": account,
            "accessKeyId": "ASIA" + _hex(rng, 16).upper(),
            "sessionContext": {"attributes": {"creationDate": "2024-03-05T08:00:00Z", "mfaAuthenticated": "true"}},
        }
    if kind == "user":
        user = rng.choice(_USERS)
        return {
            "type": "IAMUser",
            "principalId": "AIDA" + _hex(rng, 16).upper(),
            "arn": f"arn:aws:iam::{account}:user/{user}",
            "accountId": account,
            "accessKeyId": "AKIA" + _hex(rng, 16).upper(),
            "userName": user,
        }
    role = rng.choice(_ROLES)
    return {
        "type": "AssumedRole",
        "principalId": "AROA" + _hex(rng, 16).upper() + ":" + _hex(rng, 8),
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{_hex(rng, 8)}",
        "accountId": account,
        "accessKeyId": "ASIA" + _hex(rng, 16).upper(),
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROA" + _hex(rng, 16).upper(),
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "webIdFederationData": {},
            "attributes": {"creationDate": "2024-03-05T08:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def _request(rng: random.Random, source: str, name: str, account: str, region: str) -> tuple[dict | None, dict | None]:
    """Plausible requestParameters / responseElements for a call."""
    if source == "s3.amazonaws.com":
        bucket = rng.choice(_BUCKETS)
        req = {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com"}
        if name in ("GetObject", "PutObject"):
            req["key"] = f"year=2024/month=03/day=05/part-{rng.randrange(100000):05d}.snappy.parquet"
        return req, None
    if source == "kms.amazonaws.com":
        key = _uuid(rng)
        req = {
            "keyId": f"arn:aws:kms:{region}:{account}:key/{key}",
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "encryptionContext": {"aws:lambda:FunctionArn": f"arn:aws:lambda:{region}:{account}:function:orders-api"},
        }
        if name == "ScheduleKeyDeletion":
            req = {"keyId": key, "pendingWindowInDays": 30}
            return req, {"keyId": f"arn:aws:kms:{region}:{account}:key/{key}", "keyState": "PendingDeletion"}
        return req, None
    if source == "ec2.amazonaws.com":
        if name.startswith("Describe"):
            tag = {"name": "tag:Environment", "valueSet": {"items": [{"value": "prod"}]}}
            return {"maxResults": 1000, "filterSet": {"items": [tag]}}, None
        group = "sg-" + _hex(rng, 17)
        return (
            {"groupId": group, "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                                                              "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}},
            {"requestId": _uuid(rng), "_return": True},
        )
    if source == "sts.amazonaws.com" and name == "AssumeRole":
        role = rng.choice(_ROLES)
        return (
            {"roleArn": f"arn:aws:iam::{account}:role/{role}", "roleSessionName": _hex(rng, 12),
             "durationSeconds": 3600},
            {"credentials": {"accessKeyId": "ASIA" + _hex(rng, 16).upper(), "sessionToken": _hex(rng, 64),
                             "expiration": "Mar 5, 2024, 10:00:00 AM"},
             "assumedRoleUser": {"assumedRoleId": "AROA" + _hex(rng, 16).upper(),
                                 "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{_hex(rng, 8)}"}},
        )
    if source == "lambda.amazonaws.com":
        function = f"arn:aws:lambda:{region}:{account}:function:orders-api"
        return {"functionName": function, "invocationType": "RequestResponse"}, None
    if source == "iam.amazonaws.com":
        return {"roleName": rng.choice(_ROLES), "policyName": "inline-" + _hex(rng, 6),
                "policyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                                  '"Action":"s3:GetObject","Resource":"*"}]}'}, None
    if source == "logs.amazonaws.com":
        return {"logGroupName": "/aws/lambda/orders-api", "logStreamName": f"2024/03/05/[$LATEST]{_hex(rng, 32)}"}, None
    return None, None


def _cloudtrail_record(rng: random.Random, t: _dt.datetime) -> dict:
    account = rng.choice(_ACCOUNTS)
    region = rng.choice(_REGIONS)
    security = rng.random() < SECURITY_FRACTION
    kind = rng.choice(_SECURITY_KINDS) if security else "routine"
    who = "role"
    error_code = error_message = None
    additional = None
    event_type = "AwsApiCall"
    invoked_by = None
    if kind == "routine":
        source, name, read_only, _ = rng.choices(_ROUTINE, _ROUTINE_WEIGHTS)[0]
        r = rng.random()
        if r < 0.015:
            who, invoked_by = "root", "cloudtrail.amazonaws.com"  # near miss: root, but a service acting
        elif r < 0.03:
            event_type, who = "AwsServiceEvent", "root"  # near miss: root, but a service event
        elif r < 0.06:
            error_code, error_message = "ThrottlingException", "Rate exceeded"
        elif r < 0.075:
            error_code, error_message = "ResourceNotFoundException", "The specified resource does not exist."
        elif r < 0.12:
            source, name, read_only, who = "signin.amazonaws.com", "ConsoleLogin", False, "user"
            additional = {"LoginTo": _CONSOLE, "MobileVersion": "No", "MFAUsed": "Yes"}
        elif r < 0.3:
            who = "user"
    elif kind in ("unauthorized", "access_denied"):
        source, name, read_only, _ = rng.choices(_ROUTINE, _ROUTINE_WEIGHTS)[0]
        if kind == "unauthorized":
            error_code = rng.choice(("Client.UnauthorizedOperation", "UnauthorizedOperation"))
            error_message = ("You are not authorized to perform this operation. Encoded authorization failure "
                             "message: " + _hex(rng, 64))
        else:
            error_code = rng.choice(("AccessDenied", "AccessDeniedException"))
            error_message = (f"User is not authorized to perform: {source.split('.')[0]}:{name} "
                             "because no identity-based policy allows the action")
        who = rng.choice(("user", "role"))
    elif kind in ("no_mfa_signin", "failed_signin"):
        source, name, read_only, who = "signin.amazonaws.com", "ConsoleLogin", False, "user"
        additional = {"LoginTo": _CONSOLE, "MobileVersion": "No", "MFAUsed": "No"}
        if kind == "failed_signin":
            error_message = "Failed authentication"
    elif kind == "root":
        source, name, read_only, _ = rng.choices(_ROUTINE, _ROUTINE_WEIGHTS)[0]
        who = "root"
    else:
        source, names = _CHANGES[kind]
        name, read_only = rng.choice(names), False
        who = rng.choice(("user", "role", "role"))
    identity = _identity(rng, account, who)
    if invoked_by:
        identity["invokedBy"] = invoked_by
    request, response = _request(rng, source, name, account, region)
    if name == "ConsoleLogin":
        request = None
        response = {"ConsoleLogin": "Failure" if error_message else "Success"}
    record: dict = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": _ip(rng) if who != "role" or rng.random() < 0.5 else source,
        "userAgent": rng.choice(_AGENTS),
    }
    if error_code:
        record["errorCode"] = error_code
    if error_message:
        record["errorMessage"] = error_message
    record["requestParameters"] = request
    record["responseElements"] = response
    if additional:
        record["additionalEventData"] = additional
    record["requestID"] = _uuid(rng)
    record["eventID"] = _uuid(rng)
    record["readOnly"] = read_only
    if source in ("s3.amazonaws.com", "kms.amazonaws.com"):
        record["resources"] = [{"accountId": account, "type": "AWS::S3::Bucket" if source[0] == "s"
                                else "AWS::KMS::Key", "ARN": f"arn:aws:{source.split('.')[0]}:::{_hex(rng, 20)}"}]
    record["eventType"] = event_type
    record["managementEvent"] = name not in ("GetObject", "PutObject", "Invoke")
    record["recipientAccountId"] = account
    record["eventCategory"] = "Management" if record["managementEvent"] else "Data"
    record["tlsDetails"] = {
        "tlsVersion": "TLSv1.3" if rng.random() < 0.7 else "TLSv1.2",
        "cipherSuite": rng.choice(_CIPHERS),
        "clientProvidedHostHeader": f"{source.split('.')[0]}.{region}.amazonaws.com",
    }
    if who == "user" and rng.random() < 0.5:
        record["sessionCredentialFromConsole"] = "true"
    return record


def cloudtrail_events(n: int, seed: int = 1) -> Iterator[str]:
    """``n`` CloudTrail events (compact JSON), about 1.5 KB each, in time order."""
    rng = random.Random(f"cloudtrail:{seed}")
    t = EPOCH
    step = _dt.timedelta(milliseconds=250)
    for _ in range(n):
        t += step * rng.randrange(0, 5)
        yield orjson.dumps(_cloudtrail_record(rng, t)).decode()


# ---- VPC Flow Logs ------------------------------------------------------------------------------

_PORTS = (443, 443, 443, 80, 22, 3389, 53, 123, 5432, 3306, 6379, 8080)


def vpc_flow_lines(n: int, seed: int = 1, events_per_step: int = 50) -> Iterator[str]:
    """``n`` VPC Flow Logs v2 records (default format), about 20 % REJECT, in time order.

    Fields: version account-id interface-id srcaddr dstaddr srcport dstport protocol
    packets bytes start end action log-status. The start time moves on by 0-2 s every
    ``events_per_step`` records (so about ``events_per_step`` records per second of
    event time).
    """
    rng = random.Random(f"vpc:{seed}")
    random_ = rng.random
    randrange = rng.randrange
    enis = [f"eni-{_hex(rng, 17)}" for _ in range(64)]
    accounts = _ACCOUNTS
    start = EPOCH_S
    for i in range(n):
        if i % events_per_step == 0:
            start += randrange(0, 3)
        account = accounts[i % 3]
        eni = enis[randrange(64)]
        r = random_()
        if r < 0.01:
            status = "NODATA" if r < 0.008 else "SKIPDATA"
            yield f"2 {account} {eni} - - - - - - - {start} {start + 60} - {status}"
            continue
        action = "REJECT" if r < 0.21 else "ACCEPT"
        packets = randrange(1, 200)
        size = packets * randrange(40, 1500)
        proto = 6 if random_() < 0.85 else 17
        yield (
            f"2 {account} {eni} {_ip(rng)} {_ip(rng)} {randrange(1024, 65536)} {_PORTS[randrange(12)]} "
            f"{proto} {packets} {size} {start} {start + randrange(1, 60)} {action} OK"
        )


# ---- application logs ---------------------------------------------------------------------------

_LEVELS = ("INFO", "DEBUG", "WARN", "ERROR", "FATAL")
_LEVEL_WEIGHTS = (78, 12, 6, 3.5, 0.5)
_LOGGERS = ("c.e.orders.OrderController", "c.e.orders.PaymentClient", "c.e.auth.SessionFilter",
            "c.e.inventory.StockService", "o.h.engine.jdbc.spi.SqlExceptionHelper")
_PATHS = ("/api/orders", "/api/orders/{id}", "/api/cart", "/api/payments", "/api/inventory/{id}", "/healthz")
_ERRORS = (
    "payment authorisation failed: upstream timeout after 3000 ms",
    "java.lang.IllegalStateException: order {id} already settled",
    "connection reset by peer while reading response from inventory",
    "org.postgresql.util.PSQLException: deadlock detected",
    "request aborted: client disconnected",
)


def app_log_lines(n: int, seed: int = 1) -> Iterator[str]:
    """``n`` plain-text application log lines, in time order."""
    rng = random.Random(f"app:{seed}")
    t_ms = EPOCH_S * 1000
    for _ in range(n):
        t_ms += rng.randrange(0, 40)
        level = rng.choices(_LEVELS, _LEVEL_WEIGHTS)[0]
        when = _dt.datetime.fromtimestamp(t_ms / 1000, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        thread = f"http-nio-8080-exec-{rng.randrange(1, 50)}"
        head = f"{when}.{t_ms % 1000:03d}Z {level:5} [{thread}] {rng.choice(_LOGGERS)} -"
        rid = _hex(rng, 16)
        path = rng.choice(_PATHS).replace("{id}", str(rng.randrange(1, 99999)))
        user = rng.choice(_USERS)
        if level in ("ERROR", "FATAL"):
            text = rng.choice(_ERRORS).replace("{id}", str(rng.randrange(99999)))
            status = rng.choice((500, 502, 503, 504)) if rng.random() < 0.8 else 409
        elif level == "WARN":
            text = rng.choice(("slow response", "retrying request (attempt 2 of 3)", "cache miss storm"))
            status = 503 if rng.random() < 0.2 else 200
        elif level == "DEBUG":
            text = f"cache lookup key=order:{rng.randrange(99999)} hit={rng.random() < 0.8}".lower()
            status = 200
        elif rng.random() < 0.02:
            text = f"metrics window=60s ERROR_RATE=0.0{rng.randrange(10)} p99_ms={rng.randrange(80, 900)}"
            status = 200
        else:
            text = "request completed"
            status = rng.choice((200, 200, 200, 201, 204, 304, 400, 404))
        yield (
            f"{head} {text} request_id={rid} method={rng.choice(('GET', 'GET', 'POST', 'PUT'))} path={path} "
            f"status={status} latency_ms={rng.randrange(1, 3000) if status >= 500 else rng.randrange(1, 250)} "
            f"user={user}"
        )


def vpc_late_lines(n: int, seed: int = 1, in_order: bool = False) -> Iterator[str]:
    """A late-heavy VPC Flow Logs stream: the ``n`` records of :func:`vpc_flow_lines`, every
    tenth moved (its ``start`` and ``end``) far enough ahead that the other nine, read in
    between, are each more than an hour behind the newest record read before them (90 % of
    the events; the live tenth keeps moving on in time order).

    ``in_order``: the same records sorted by ``start`` (stable), the in-order stream they
    are compared with.
    """
    base = list(vpc_flow_lines(n, seed))
    # the base stream spans at most 2 s per 50 records (+ 60 s of end): live records are
    # put 3 hours beyond that
    shift = 2 * (n // 50 + 1) + 60 + 3 * 3600
    out = []
    for i, line in enumerate(base):
        if i % 10 == 0:
            f = line.split(" ")
            if f[10] != "-":
                f[10] = str(int(f[10]) + shift)
                f[11] = str(int(f[11]) + shift)
                line = " ".join(f)
        out.append(line)
    if in_order:
        out.sort(key=lambda line: int(line.split(" ")[10]))
    return iter(out)


GENERATORS: dict[str, Callable[..., Iterator[str]]] = {
    "cloudtrail": cloudtrail_events,
    "vpc": vpc_flow_lines,
    "app": app_log_lines,
    "vpc-e2e": vpc_flow_lines,  # the same stream, another size (the end-to-end workload's)
    "vpc-late": vpc_late_lines,
    "vpc-late-sorted": lambda n, seed=1: vpc_late_lines(n, seed, in_order=True),
}


def write_stream(path: str | Path, stream: str, n: int, seed: int = 1, **options: Any) -> int:
    """Write ``n`` events of ``stream`` to ``path``, one per line; returns the file size in bytes.

    ``options`` go to the stream's generator (``events_per_step`` for ``vpc``).
    """
    lines = GENERATORS[stream](n, seed, **options)
    size = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) == 10_000:
                text = "\n".join(chunk) + "\n"
                fh.write(text)
                size += len(text.encode())
                chunk.clear()
        if chunk:
            text = "\n".join(chunk) + "\n"
            fh.write(text)
            size += len(text.encode())
    return size
