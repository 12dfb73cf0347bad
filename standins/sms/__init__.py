"""SMS carrier stand-ins: local servers answering in Alibaba Cloud's, Tencent Cloud's and the generic dialect."""
