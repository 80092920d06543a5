// Test-only PKI for the fuzz targets: an Ed25519 root and an Ed25519 leaf for localhost and
// 127.0.0.1 (deterministic signatures, so a crash reproduces). Made with OpenSSL 3.0 from
// Fuzz/Fixtures/*.pem; these strings are copies of those files. The key protects nothing.
public enum Fixtures {
    public static let rootPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBWzCCAQ2gAwIBAgIBATAFBgMrZXAwNDEiMCAGA1UEAwwZUS1TU0wgRnV6eiBS
        b290IChFZDI1NTE5KTEOMAwGA1UECgwFUS1TU0wwIBcNMjYxMTMwMTAxNjE5WhgP
        MjEyNjExMDYxMDE2MTlaMDQxIjAgBgNVBAMMGVEtU1NMIEZ1enogUm9vdCAoRWQy
        NTUxOSkxDjAMBgNVBAoMBVEtU1NMMCowBQYDK2VwAyEA01HAQWvFGNppSHET0ium
        Gt2b7Ikv9cQMdkeD67hNtpCjQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/
        BAQDAgGGMB0GA1UdDgQWBBQloLCi2mOBj9+CA5y/v0nUoFbffDAFBgMrZXADQQD/
        bYlVNr1Dce/+HImhcVvOd3ICmghfwlFmdOKBIXbgIrtYHuqYGLkVlDgRsVynfOga
        AlOU9zX6mccItSWEOiAI
        -----END CERTIFICATE-----
        """
    public static let leafPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBpjCCAVigAwIBAgIBAjAFBgMrZXAwNDEiMCAGA1UEAwwZUS1TU0wgRnV6eiBS
        b290IChFZDI1NTE5KTEOMAwGA1UECgwFUS1TU0wwIBcNMjYxMTMwMTAxNjE5WhgP
        MjEyNjExMDYxMDE2MTlaMCQxEjAQBgNVBAMMCWxvY2FsaG9zdDEOMAwGA1UECgwF
        US1TU0wwKjAFBgMrZXADIQCo0TaMhURtrYB54XYuOcjDWFnJ4Z2zZ+dz/u2sjkk1
        0qOBnDCBmTAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDAdBgNVHSUEFjAU
        BggrBgEFBQcDAQYIKwYBBQUHAwIwGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAAB
        MB0GA1UdDgQWBBR3yz/EhtbiZg6yR4U29YjUoARLUjAfBgNVHSMEGDAWgBQloLCi
        2mOBj9+CA5y/v0nUoFbffDAFBgMrZXADQQCTZ3FJwD8cV563PVBBJJmEFEt/57i5
        7qsidxzaoQuTyoWWG3gLJ4cL4DyHJ2jvk39p3e8e74094wlkEqyC4LUO
        -----END CERTIFICATE-----
        """
    public static let leafKeyPEM = """
        -----BEGIN PRIVATE KEY-----
        MC4CAQAwBQYDK2VwBCIEIIVJeSTK1+Ncj69HDn6B1rwGG5Q5WSY7v9vebfj3/ioN
        -----END PRIVATE KEY-----
        """
}
