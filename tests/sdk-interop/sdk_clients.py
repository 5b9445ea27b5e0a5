"""One small facade over each official Python OSS SDK, so every interop test runs unchanged with
oss2 and alibabacloud-oss-v2, in V4 and V1.

The facades only translate calls and results; the SDKs still build, sign, send and parse every
request (and check CRC-64 where they do). Service errors come out as `ServiceFailure` with the
HTTP status and OSS error code, whichever SDK raised them.
"""

import contextlib
import datetime

import alibabacloud_oss_v2 as v2
import oss2
import oss2.models
from alibabacloud_oss_v2.models import object_basic as v2_objects  # object tags; v2.Tagging is the bucket one

from crc64 import crc64

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30


class ServiceFailure(Exception):
    """An error answer from the server, as the SDK reported it."""

    def __init__(self, sdk, status, code, message, ec=None):
        super().__init__(f"{sdk}: HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.ec = ec


class CrcMismatch(Exception):
    """The SDK's own CRC-64 check failed."""


class Listing:
    def __init__(self, keys, prefixes, truncated, next_marker):
        self.keys = keys
        self.prefixes = prefixes
        self.truncated = truncated
        self.next_marker = next_marker


class Part:
    def __init__(self, number, etag, size, crc=None):
        self.number = number
        self.etag = etag
        self.size = size
        self.crc = crc  # from ListParts' HashCrc64ecma where the SDK exposes it


def _lower(headers):
    return {k.lower(): v for k, v in headers.items()}


# ---------------------------------------------------------------------------------------------
# oss2
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _oss2_errors():
    try:
        yield
    except oss2.exceptions.InconsistentError as e:
        raise CrcMismatch(str(e)) from e
    except oss2.exceptions.OssError as e:
        if e.status < 0:  # client-side problems (network, parsing) stay as they are
            raise
        raise ServiceFailure("oss2", e.status, e.code, e.message, e.ec) from e


class Oss2Client:
    sdk = "oss2"

    def __init__(self, endpoint, version, access_key_id, access_key_secret, security_token=None,
                 region="cn-hangzhou"):
        self.endpoint = endpoint  # http://127.0.0.1:PORT: oss2 uses path style for IP endpoints
        self.version = version
        self.region = region
        if security_token:
            self.auth = oss2.StsAuth(access_key_id, access_key_secret, security_token, auth_version=version)
        elif version == "v4":
            self.auth = oss2.AuthV4(access_key_id, access_key_secret)
        else:
            self.auth = oss2.Auth(access_key_id, access_key_secret)

    def _bucket(self, name):
        return oss2.Bucket(self.auth, self.endpoint, name, region=self.region,
                           connect_timeout=CONNECT_TIMEOUT_S, enable_crc=True)

    def create_bucket(self, bucket):
        with _oss2_errors():
            self._bucket(bucket).create_bucket()

    def list_buckets(self):
        service = oss2.Service(self.auth, self.endpoint, connect_timeout=CONNECT_TIMEOUT_S, region=self.region)
        with _oss2_errors():
            return [b.name for b in oss2.BucketIterator(service)]

    def put(self, bucket, key, data, *, content_type=None, metadata=None, cache_control=None,
            content_disposition=None, content_encoding=None, expires=None, storage_class=None,
            forbid_overwrite=None, content_md5=None, tagging=None):
        headers = {}
        for name, value in [("Content-Type", content_type), ("Cache-Control", cache_control),
                            ("Content-Disposition", content_disposition), ("Content-Encoding", content_encoding),
                            ("Expires", expires), ("x-oss-storage-class", storage_class),
                            ("Content-MD5", content_md5), ("x-oss-tagging", tagging)]:
            if value is not None:
                headers[name] = value
        if forbid_overwrite is not None:
            headers["x-oss-forbid-overwrite"] = "true" if forbid_overwrite else "false"
        for name, value in (metadata or {}).items():
            headers["x-oss-meta-" + name] = value
        with _oss2_errors():
            result = self._bucket(bucket).put_object(key, data, headers=headers)  # checks CRC-64
        return {"etag": result.etag, "crc64": result.crc}

    def get(self, bucket, key, byte_range=None):
        with _oss2_errors():
            result = self._bucket(bucket).get_object(key, byte_range=byte_range)
            data = result.read()
        if byte_range is None and result.server_crc is not None and result.client_crc != result.server_crc:
            raise CrcMismatch(f"oss2 read {result.client_crc}, server says {result.server_crc}")
        return data, _lower(result.headers)

    def head(self, bucket, key):
        with _oss2_errors():
            return _lower(self._bucket(bucket).head_object(key).headers)

    def delete(self, bucket, key):
        with _oss2_errors():
            self._bucket(bucket).delete_object(key)

    def put_tagging(self, bucket, key, tags):
        """Replaces the object's tags with `tags`, a list of (key, value); returns the HTTP status."""
        rule = oss2.models.TaggingRule()
        for name, value in tags:
            rule.tagging_rule[name] = value  # not rule.add: the server, not oss2's own checks, judges
        with _oss2_errors():
            return self._bucket(bucket).put_object_tagging(key, oss2.models.Tagging(rule)).status

    def get_tagging(self, bucket, key):
        with _oss2_errors():
            r = self._bucket(bucket).get_object_tagging(key)
        return list(r.tag_set.tagging_rule.items())

    def delete_tagging(self, bucket, key):
        with _oss2_errors():
            return self._bucket(bucket).delete_object_tagging(key).status

    def list_v1(self, bucket, prefix="", delimiter="", marker="", max_keys=100):
        with _oss2_errors():
            r = self._bucket(bucket).list_objects(prefix=prefix, delimiter=delimiter, marker=marker,
                                                  max_keys=max_keys)
        return Listing([o.key for o in r.object_list], list(r.prefix_list), r.is_truncated, r.next_marker)

    def list_v2(self, bucket, prefix="", delimiter="", token="", start_after="", max_keys=100):
        with _oss2_errors():
            r = self._bucket(bucket).list_objects_v2(prefix=prefix, delimiter=delimiter, continuation_token=token,
                                                     start_after=start_after, max_keys=max_keys)
        return Listing([o.key for o in r.object_list], list(r.prefix_list), r.is_truncated,
                       r.next_continuation_token)

    def init_multipart(self, bucket, key, metadata=None):
        headers = {"x-oss-meta-" + k: v for k, v in (metadata or {}).items()}
        with _oss2_errors():
            return self._bucket(bucket).init_multipart_upload(key, headers=headers).upload_id

    def upload_part(self, bucket, key, upload_id, number, data):
        with _oss2_errors():
            r = self._bucket(bucket).upload_part(key, upload_id, number, data)  # checks the part CRC-64
        return Part(number, r.etag, len(data), r.crc)

    def list_parts(self, bucket, key, upload_id, marker=0, max_parts=1000):
        with _oss2_errors():
            r = self._bucket(bucket).list_parts(key, upload_id, marker=str(marker or ""), max_parts=max_parts)
        parts = [Part(p.part_number, p.etag, p.size) for p in r.parts]
        return parts, r.is_truncated, int(r.next_marker or 0)

    def complete(self, bucket, key, upload_id, parts):
        infos = [oss2.models.PartInfo(p.number, p.etag, size=p.size, part_crc=p.crc) for p in parts]
        with _oss2_errors():
            # With every part's CRC and size known, oss2 combines them and checks the server's value.
            r = self._bucket(bucket).complete_multipart_upload(key, upload_id, infos)
        return r.crc

    def abort(self, bucket, key, upload_id):
        with _oss2_errors():
            self._bucket(bucket).abort_multipart_upload(key, upload_id)

    def copy(self, bucket, src_key, dst_key, src_bucket=None):
        with _oss2_errors():
            self._bucket(bucket).copy_object(src_bucket or bucket, src_key, dst_key)

    def restore(self, bucket, key, days=1):
        config = oss2.models.RestoreConfiguration(days=days)
        with _oss2_errors():
            return self._bucket(bucket).restore_object(key, input=config).status

    def put_mirror_website(self, bucket, mirror_url, prefix):
        rule = oss2.models.RoutingRule(
            rule_num=1,
            condition=oss2.models.Condition(key_prefix_equals=prefix, http_err_code_return_equals=404),
            redirect=oss2.models.Redirect(redirect_type=oss2.models.REDIRECT_TYPE_MIRROR, mirror_url=mirror_url,
                                          mirror_pass_query_string=True, mirror_follow_redirect=True,
                                          mirror_check_md5=False))
        website = oss2.models.BucketWebsite("index.html", "error.html", [rule])
        with _oss2_errors():
            self._bucket(bucket).put_bucket_website(website)

    def get_website(self, bucket):
        with _oss2_errors():
            r = self._bucket(bucket).get_bucket_website()
        rules = [{"number": x.rule_num, "prefix": x.condition.key_prefix_equals,
                  "http_code": int(x.condition.http_err_code_return_equals),
                  "type": x.redirect.redirect_type, "mirror_url": x.redirect.mirror_url} for x in r.rules]
        return {"index": r.index_file, "rules": rules}

    def delete_website(self, bucket):
        with _oss2_errors():
            self._bucket(bucket).delete_bucket_website()

    def presign(self, method, bucket, key, expires_s, headers=None):
        return self._bucket(bucket).sign_url(method, key, expires_s, headers=headers or {})


# ---------------------------------------------------------------------------------------------
# alibabacloud-oss-v2
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _v2_errors():
    try:
        yield
    except v2.exceptions.OperationError as e:
        inner = e.unwrap()
        if isinstance(inner, v2.exceptions.InconsistentError):
            raise CrcMismatch(str(inner)) from e
        if isinstance(inner, v2.exceptions.ServiceError):
            raise ServiceFailure("alibabacloud-oss-v2", inner.status_code, inner.code, inner.message,
                                 inner.ec) from e
        raise


class V2Client:
    sdk = "alibabacloud-oss-v2"

    def __init__(self, endpoint, version, access_key_id, access_key_secret, security_token=None,
                 region="cn-hangzhou"):
        cfg = v2.config.load_default()
        cfg.credentials_provider = v2.credentials.StaticCredentialsProvider(
            access_key_id, access_key_secret, security_token)
        cfg.region = region
        cfg.endpoint = endpoint  # http://127.0.0.1:PORT: an IP endpoint makes the SDK use path style
        cfg.use_path_style = True
        cfg.signature_version = version
        cfg.connect_timeout = CONNECT_TIMEOUT_S
        cfg.readwrite_timeout = READ_TIMEOUT_S
        cfg.retry_max_attempts = 1  # a failure must show, not be retried away
        self.version = version
        self.client = v2.Client(cfg)

    def create_bucket(self, bucket):
        with _v2_errors():
            self.client.put_bucket(v2.PutBucketRequest(bucket=bucket))

    def list_buckets(self):
        with _v2_errors():
            r = self.client.list_buckets(v2.ListBucketsRequest())
        return [b.name for b in (r.buckets or [])]

    def put(self, bucket, key, data, *, content_type=None, metadata=None, cache_control=None,
            content_disposition=None, content_encoding=None, expires=None, storage_class=None,
            forbid_overwrite=None, content_md5=None, tagging=None):
        request = v2.PutObjectRequest(
            bucket=bucket, key=key, body=data, content_type=content_type, metadata=metadata,
            cache_control=cache_control, content_disposition=content_disposition,
            content_encoding=content_encoding, expires=expires, storage_class=storage_class,
            forbid_overwrite=forbid_overwrite, content_md5=content_md5, tagging=tagging)
        with _v2_errors():
            r = self.client.put_object(request)  # checks CRC-64 (upload check is on by default)
        return {"etag": r.etag, "crc64": int(r.hash_crc64) if r.hash_crc64 else None}

    def get(self, bucket, key, byte_range=None):
        range_header = None
        if byte_range is not None:
            start, end = byte_range
            range_header = f"bytes={'' if start is None else start}-{'' if end is None else end}"
        with _v2_errors():
            r = self.client.get_object(v2.GetObjectRequest(bucket=bucket, key=key, range_header=range_header))
            data = r.body.read()
        headers = _lower(r.headers)
        server_crc = headers.get("x-oss-hash-crc64ecma")
        if byte_range is None and server_crc is not None and int(server_crc) != crc64(data):
            raise CrcMismatch(f"alibabacloud-oss-v2 read {crc64(data)}, server says {server_crc}")
        return data, headers

    def head(self, bucket, key):
        with _v2_errors():
            return _lower(self.client.head_object(v2.HeadObjectRequest(bucket=bucket, key=key)).headers)

    def delete(self, bucket, key):
        with _v2_errors():
            self.client.delete_object(v2.DeleteObjectRequest(bucket=bucket, key=key))

    def put_tagging(self, bucket, key, tags):
        tag_set = v2_objects.TagSet(tags=[v2_objects.Tag(key=k, value=v) for k, v in tags])
        request = v2.PutObjectTaggingRequest(bucket=bucket, key=key,
                                             tagging=v2_objects.Tagging(tag_set=tag_set))
        with _v2_errors():
            return self.client.put_object_tagging(request).status_code

    def get_tagging(self, bucket, key):
        with _v2_errors():
            r = self.client.get_object_tagging(v2.GetObjectTaggingRequest(bucket=bucket, key=key))
        tags = r.tag_set.tags if r.tag_set else None
        return [(t.key, t.value or "") for t in tags or []]

    def delete_tagging(self, bucket, key):
        with _v2_errors():
            return self.client.delete_object_tagging(
                v2.DeleteObjectTaggingRequest(bucket=bucket, key=key)).status_code

    def list_v1(self, bucket, prefix="", delimiter="", marker="", max_keys=100):
        request = v2.ListObjectsRequest(bucket=bucket, prefix=prefix or None, delimiter=delimiter or None,
                                        marker=marker or None, max_keys=max_keys, encoding_type="url")
        with _v2_errors():
            r = self.client.list_objects(request)
        return Listing([o.key for o in r.contents or []], [p.prefix for p in r.common_prefixes or []],
                       bool(r.is_truncated), r.next_marker)

    def list_v2(self, bucket, prefix="", delimiter="", token="", start_after="", max_keys=100):
        request = v2.ListObjectsV2Request(bucket=bucket, prefix=prefix or None, delimiter=delimiter or None,
                                          continuation_token=token or None, start_after=start_after or None,
                                          max_keys=max_keys, encoding_type="url")
        with _v2_errors():
            r = self.client.list_objects_v2(request)
        return Listing([o.key for o in r.contents or []], [p.prefix for p in r.common_prefixes or []],
                       bool(r.is_truncated), r.next_continuation_token)

    def init_multipart(self, bucket, key, metadata=None):
        with _v2_errors():
            r = self.client.initiate_multipart_upload(
                v2.InitiateMultipartUploadRequest(bucket=bucket, key=key, metadata=metadata))
        return r.upload_id

    def upload_part(self, bucket, key, upload_id, number, data):
        request = v2.UploadPartRequest(bucket=bucket, key=key, upload_id=upload_id, part_number=number,
                                       body=data)
        with _v2_errors():
            r = self.client.upload_part(request)  # checks the part CRC-64
        return Part(number, r.etag, len(data), int(r.hash_crc64) if r.hash_crc64 else None)

    def list_parts(self, bucket, key, upload_id, marker=0, max_parts=1000):
        request = v2.ListPartsRequest(bucket=bucket, key=key, upload_id=upload_id,
                                      part_number_marker=marker or None, max_parts=max_parts)
        with _v2_errors():
            r = self.client.list_parts(request)
        parts = [Part(p.part_number, p.etag, p.size, int(p.hash_crc64) if p.hash_crc64 else None)
                 for p in r.parts or []]
        return parts, bool(r.is_truncated), int(r.next_part_number_marker or 0)

    def complete(self, bucket, key, upload_id, parts):
        body = v2.CompleteMultipartUpload(parts=[v2.UploadPart(part_number=p.number, etag=p.etag) for p in parts])
        request = v2.CompleteMultipartUploadRequest(bucket=bucket, key=key, upload_id=upload_id,
                                                    complete_multipart_upload=body)
        with _v2_errors():
            r = self.client.complete_multipart_upload(request)
        return int(r.hash_crc64) if r.hash_crc64 else None

    def abort(self, bucket, key, upload_id):
        with _v2_errors():
            self.client.abort_multipart_upload(
                v2.AbortMultipartUploadRequest(bucket=bucket, key=key, upload_id=upload_id))

    def copy(self, bucket, src_key, dst_key, src_bucket=None):
        request = v2.CopyObjectRequest(bucket=bucket, key=dst_key, source_bucket=src_bucket or bucket,
                                       source_key=src_key)
        with _v2_errors():
            self.client.copy_object(request)

    def restore(self, bucket, key, days=1):
        request = v2.RestoreObjectRequest(bucket=bucket, key=key, restore_request=v2.RestoreRequest(days=days))
        with _v2_errors():
            return self.client.restore_object(request).status_code

    def put_mirror_website(self, bucket, mirror_url, prefix):
        rule = v2.RoutingRule(
            rule_number=1,
            condition=v2.RoutingRuleCondition(key_prefix_equals=prefix, http_error_code_returned_equals=404),
            redirect=v2.RoutingRuleRedirect(redirect_type="Mirror", mirror_url=mirror_url,
                                            mirror_pass_query_string=True, mirror_follow_redirect=True,
                                            mirror_check_md5=False))
        config = v2.WebsiteConfiguration(index_document=v2.IndexDocument(suffix="index.html"),
                                         routing_rules=v2.RoutingRules(routing_rules=[rule]))
        with _v2_errors():
            self.client.put_bucket_website(v2.PutBucketWebsiteRequest(bucket=bucket, website_configuration=config))

    def get_website(self, bucket):
        with _v2_errors():
            r = self.client.get_bucket_website(v2.GetBucketWebsiteRequest(bucket=bucket))
        config = r.website_configuration
        rules = [{"number": x.rule_number, "prefix": x.condition.key_prefix_equals,
                  "http_code": int(x.condition.http_error_code_returned_equals),
                  "type": x.redirect.redirect_type, "mirror_url": x.redirect.mirror_url}
                 for x in (config.routing_rules.routing_rules if config.routing_rules else [])]
        return {"index": config.index_document.suffix if config.index_document else None, "rules": rules}

    def delete_website(self, bucket):
        with _v2_errors():
            self.client.delete_bucket_website(v2.DeleteBucketWebsiteRequest(bucket=bucket))

    def presign(self, method, bucket, key, expires_s, headers=None):
        headers = headers or {}
        expires = datetime.timedelta(seconds=expires_s)
        if method == "GET":
            request = v2.GetObjectRequest(bucket=bucket, key=key)
        elif method == "PUT":
            request = v2.PutObjectRequest(bucket=bucket, key=key, content_type=headers.get("Content-Type"))
        else:
            raise ValueError(f"presign supports GET and PUT here, not {method}")
        return self.client.presign(request, expires=expires).url


def make_client(sdk, endpoint, version, access_key_id, access_key_secret, security_token=None,
                region="cn-hangzhou"):
    cls = Oss2Client if sdk == "oss2" else V2Client
    return cls(endpoint, version, access_key_id, access_key_secret, security_token, region)

