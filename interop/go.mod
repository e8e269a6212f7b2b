module github.com/moqgo/moq/interop

go 1.26.0
