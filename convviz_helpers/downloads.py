"""One readable error for every download the full profile needs (datasets, ImageNet weights).

Without a network, the libraries we call fail slowly and cryptically: tensorflow-datasets
retries an unresolvable host with back-off for minutes, Keras raises a bare ``Exception``
whose text starts with "URL fetch failure". ``guarded_download`` turns such failures into a
``DownloadError`` that says what was asked for, why it failed and how to get it, and fails
within seconds.

Usage::

    with guarded_download(what="ImageNet weights for 'vgg16'",
                          how="Run once with network access, or place FILE in ~/.keras/models/."):
        ...  # the call that downloads
"""

import contextlib
import socket
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_TIMEOUT = 10.0

# Lower-case fragments of messages that mean "the network is not there", for libraries that
# wrap the socket error into their own exception type (or into a bare Exception).
_NETWORK_MESSAGES = (
    "url fetch failure",
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "getaddrinfo failed",
    "failed to resolve",
    "name resolution",
    "connection refused",
    "connection reset",
    "connection aborted",
    "network is unreachable",
    "no route to host",
    "max retries exceeded",
    "timed out",
    "failed to get url",
)


class DownloadError(RuntimeError):
    """A download the caller asked for could not happen; the message says how to fix it."""


@contextlib.contextmanager
def guarded_download(what, how, *, urls=(), timeout=DEFAULT_TIMEOUT):
    """Run a block that downloads, turning network failures into one readable ``DownloadError``.

    Parameters
    ----------
    what : str
        What is being downloaded, as the reader would name it ("the 'tf_flowers' dataset").
    how : str
        How to get it anyway (run once online, where to put the file), one or two sentences.
    urls : iterable of str, optional
        Addresses the block will fetch. Their hosts are probed first (one TCP connection each,
        skipped when a proxy is configured for them), so a missing network fails in seconds
        even when the library inside the block would retry for minutes.
    timeout : float
        Socket default timeout in seconds while the block runs; the previous one is restored.

    Raises
    ------
    DownloadError
        "Could not download {what}: {reason}. {how}", chained to the original exception.
        Errors that are not network failures (a full disk, a bad argument) pass unchanged.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        for url in urls:
            reason = _probe(url, timeout)
            if reason:
                raise DownloadError(_message(what, reason, how))
        yield
    except DownloadError:
        raise
    except Exception as exc:
        reason = network_failure_reason(exc)
        if reason is None:
            raise
        raise DownloadError(_message(what, reason, how)) from exc
    finally:
        socket.setdefaulttimeout(previous)


def network_failure_reason(exc):
    """A short human reason if ``exc`` (or an exception it was raised from) is a network
    failure, else None."""
    for err in _chain(exc):
        if isinstance(err, socket.gaierror):
            return f"the host name could not be resolved ({err.strerror or err}), so the machine seems to be offline"
        if isinstance(err, (TimeoutError, socket.timeout)):
            return "the connection timed out"
        if isinstance(err, ConnectionRefusedError):
            return "the server refused the connection"
        if isinstance(err, urllib.error.HTTPError):
            return f"the server answered HTTP {err.code} {err.reason}"
        if isinstance(err, ConnectionError):
            return f"the connection failed ({err})"
    for err in _chain(exc):
        text = str(err)
        if any(fragment in text.lower() for fragment in _NETWORK_MESSAGES):
            return _shorten(text)
    return None


def _chain(exc):
    """``exc`` and the exceptions it was raised from or while handling, outermost first."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
            yield exc.reason
        exc = exc.__cause__ or exc.__context__


def _probe(url, timeout):
    """None if a TCP connection to the URL's host can be opened, else the reason why not."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if not host:
        return None
    proxies = urllib.request.getproxies()
    if parts.scheme in proxies and not urllib.request.proxy_bypass(host):
        return None  # the request will go through the proxy, which we cannot probe directly
    port = parts.port or {"https": 443, "http": 80, "ftp": 21}.get(parts.scheme, 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        reason = network_failure_reason(exc) or str(exc)
        return f"{host} is not reachable: {reason}"


def _message(what, reason, how):
    return f"Could not download {what}: {reason.rstrip('.?')}. {how}"


def _shorten(text, limit=300):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
