print("qssl")
