"""Tests of the handler in both protocols, standard library only: python3 -m unittest -v"""

import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HandlerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        env = dict(os.environ, FUNCTIONS_CUSTOMHANDLER_PORT=str(cls.port))
        cls.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "handler.py")], env=env)
        deadline = time.time() + 10
        while True:  # the host's readiness check: any answer to GET /
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{cls.port}/", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.025)

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(5)

    def post_payload(self, req):
        data = json.dumps({"Data": {"req": req}, "Metadata": {}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/hello", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request) as res:
            return json.loads(res.read())

    def test_payload_protocol_greets_by_query(self):
        answer = self.post_payload({"Method": "GET", "Url": "http://x/api/hello?name=Ada", "Query": {"name": "Ada"}})
        self.assertEqual(answer["Outputs"]["res"]["statusCode"], 200)
        self.assertEqual(answer["Outputs"]["res"]["body"], "Hello, Ada!")
        self.assertEqual(answer["Logs"], ["hello was called with GET http://x/api/hello?name=Ada"])

    def test_payload_protocol_greets_by_body(self):
        answer = self.post_payload({"Method": "POST", "Query": {}, "Body": "Grace"})
        self.assertEqual(answer["Outputs"]["res"]["body"], "Hello, Grace!")

    def test_forwarded_request_is_answered_directly(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/hello?name=Linus") as res:
            self.assertEqual(res.read().decode(), "Hello, Linus!")


if __name__ == "__main__":
    unittest.main()
