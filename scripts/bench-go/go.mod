module qsslbenchgo

go 1.27
