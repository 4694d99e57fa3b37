"""Readiness probe of a tritonkit deployment: one tiny KServe v2 inference of the ensemble.

Standard library only: it runs with the python3 of NVIDIA's Triton image (used by the Helm
chart's exec probe and by `tritonkit kserve`). Arguments: HOST:PORT NAME TIMEOUT_SECONDS.
"""

import json, sys, urllib.error, urllib.request
url = "http://%s/v2/models/%s/infer" % (sys.argv[1], sys.argv[2])
body = {"inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["tritonkit probe"]}]}
request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=float(sys.argv[3])) as response:
        outputs = json.load(response).get("outputs")
except urllib.error.HTTPError as e:
    sys.exit("inference probe: HTTP %d %s" % (e.code, e.read()[:300].decode(errors="replace")))
except Exception as e:
    sys.exit("inference probe: %s: %s" % (type(e).__name__, e))
if not outputs:
    sys.exit("inference probe: the response has no outputs")
