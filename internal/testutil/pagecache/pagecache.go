// Package pagecache lets tests see which of a file's pages the kernel
// holds in its page cache.
package pagecache
